"""The client side: voicechat's public Python client API (:func:`connect`, :class:`Chat`, the
typed events of :mod:`.events`; docs/clients.md), and what the CLI builds on it: a conversation
of turns (:mod:`.conversation`), the terminal views (:mod:`.console`), playback
(:mod:`.playback`) and audio files (:mod:`.audio_file`). :mod:`.connection` is one socket.

May import: the top-level modules and the pipeline's audio helpers. Never the server, except
through :func:`voicechat.client.local_server.local_server`, the one door to an in-process server.
"""

from voicechat.client.chat import Chat, TurnLost, connect
from voicechat.client.connection import ConnectionFailed
from voicechat.client.events import (
    Audio,
    Backend,
    Done,
    Error,
    Event,
    Paused,
    Ready,
    Reconnected,
    Resumed,
    Sentence,
    Stopped,
    Text,
)

__all__ = [
    "Audio",
    "Backend",
    "Chat",
    "ConnectionFailed",
    "Done",
    "Error",
    "Event",
    "Paused",
    "Ready",
    "Reconnected",
    "Resumed",
    "Sentence",
    "Stopped",
    "Text",
    "TurnLost",
    "connect",
]
