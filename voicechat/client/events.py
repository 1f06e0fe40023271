"""The server's messages as typed events (frozen, slotted dataclasses), parsed once, here.

An action this client does not know (a newer server) is skipped, not an error: see
:func:`parse_event`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Ready:
    """The session is open (``ready``): who answers, who speaks, in which voices."""

    session: str
    llm: str
    tts: str  # the TTS backend that speaks next
    voices: tuple[str, ...]
    sample_rate: int
    resumed: bool = False  # the server took this client back into its session after a drop
    backends: dict[str, tuple[str, ...]] = field(default_factory=dict)  # each one's voices


@dataclass(frozen=True, slots=True)
class Text:
    """A piece of the LLM's answer, as it streams (captions; markdown and all)."""

    turn: str
    delta: str


@dataclass(frozen=True, slots=True)
class Sentence:
    """Chunk ``index`` of the answer, as it is spoken; its audio follows."""

    turn: str
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class Audio:
    """One audio frame: whole MP3 frames of sentence ``sentence``. The ``mp3`` of a turn's
    frames, concatenated in ``seq`` order, is one playable MP3."""

    turn: str
    sentence: int
    seq: int
    mp3: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Backend:
    """Another TTS backend speaks from the next sentence on (a fallback chain moved)."""

    turn: str
    tts: str
    reason: str


@dataclass(frozen=True, slots=True)
class Paused:
    turn: str | None  # None: nothing was playing


@dataclass(frozen=True, slots=True)
class Resumed:
    turn: str | None


@dataclass(frozen=True, slots=True)
class Stopped:
    """The turn was stopped: ``spoken`` was sent, ``heard`` had started playing."""

    turn: str | None
    spoken: str
    heard: str


@dataclass(frozen=True, slots=True)
class Done:
    """The turn ended by itself."""

    turn: str
    text: str
    sentences: int
    audio_ms: int


@dataclass(frozen=True, slots=True)
class Error:
    """The server reports an error; ``turn`` is None when it is not about a turn (a refused
    ``start``, a rate limit). ``data`` holds the rest (``sentence`` of a ``tts_failed``)."""

    turn: str | None
    code: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reconnected:
    """Not a server message: the connection dropped and the session was taken back
    (``ready`` with ``resumed``); the turn goes on where it was."""

    session: str
    attempts: int


Event = Text | Sentence | Audio | Backend | Paused | Resumed | Stopped | Done | Error | Reconnected


def parse_ready(message: dict[str, Any]) -> Ready:
    data = message["data"]
    return Ready(
        session=data["session"],
        llm=data["llm"],
        tts=data["tts"],
        voices=tuple(data["voices"]),
        sample_rate=int(data["audio"]["sample_rate"]),
        resumed=bool(data.get("resumed", False)),
        backends={name: tuple(v) for name, v in data.get("backends", {}).items()},
    )


def parse_event(message: dict[str, Any]) -> Event | None:
    """The event of one server message (not ``ready``); None for an action it does not know."""
    data: Any = message.get("data")
    turn: Any = message.get("turn")
    match message.get("action"):
        case "text":
            return Text(turn, data)
        case "sentence":
            return Sentence(turn, message["index"], data)
        case "audio":
            return Audio(turn, message["sentence"], message["seq"], base64.b64decode(data))
        case "backend":
            return Backend(turn, data["tts"], data["reason"])
        case "paused":
            return Paused(turn)
        case "resumed":
            return Resumed(turn)
        case "stopped":
            return Stopped(turn, data.get("spoken", ""), data.get("heard", ""))
        case "done":
            return Done(turn, data["text"], data["sentences"], data["audio_ms"])
        case "error":
            rest = {k: v for k, v in data.items() if k not in ("code", "message")}
            return Error(turn, data["code"], data["message"], rest)
    return None
