"""voicechat: stream an LLM's answer as speech, sentence by sentence, over a WebSocket."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
