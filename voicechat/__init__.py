"""voicechat: stream an LLM's answer as speech, sentence by sentence, over a WebSocket.

The Python client API (docs/clients.md)::

    async with voicechat.connect("ws://127.0.0.1:8765/ws") as chat:
        async for event in chat.say("Hello"): ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voicechat.client.chat import connect as connect

__version__ = "0.1.0"
PROTOCOL_VERSION = 1


def __getattr__(name: str) -> Any:
    # Imported on first use: the server, which imports this package, needs no client.
    if name == "connect":
        from voicechat.client.chat import connect

        return connect
    raise AttributeError(f"module 'voicechat' has no attribute {name!r}")
