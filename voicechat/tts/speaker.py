"""Which TTS backend is speaking, as a session tells its client.

``ready.data.tts`` names the backend that speaks next; when a sentence is spoken by another one
(a fallback chain switched), the session sends a ``backend`` event right before that sentence's
``sentence`` event. :class:`Announcer` keeps what the client was last told; per turn it hands
out a :class:`TurnSpeakers` view of the shared backend that notes who spoke each chunk.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any, Protocol, runtime_checkable

from voicechat import protocol
from voicechat.tts.base import TTSBackend

Trace = Callable[[str, str], None]  # (backend name, reason it was chosen)


@runtime_checkable
class TracedTTS(Protocol):
    """A backend made of others (a fallback chain) that says which one spoke each chunk."""

    @property
    def active(self) -> str:
        """The backend that would speak the next chunk."""
        ...

    def synthesize_traced(
        self, text: str, *, voice: str | None, trace: Trace
    ) -> AsyncGenerator[bytes, None]: ...


@runtime_checkable
class ChainedTTS(Protocol):
    """A backend made of others, tried in order."""

    @property
    def backends(self) -> list[TTSBackend]: ...


def active_backend(tts: TTSBackend) -> str:
    return tts.active if isinstance(tts, TracedTTS) else tts.name


def voices_by_backend(tts: TTSBackend) -> dict[str, list[str]]:
    """Each backend's voices, in the chain's order (``ready.data.backends``): a client shows
    the voices of the backend that will speak, and knows whose voice a voice is."""
    members = tts.backends if isinstance(tts, ChainedTTS) else [tts]
    return {member.name: member.voices() for member in members}


class TurnSpeakers:
    """The shared backend as one turn sees it: it records the backend of each chunk's text."""

    def __init__(self, tts: TTSBackend) -> None:
        self._tts = tts
        self.name = tts.name
        self.sample_rate = tts.sample_rate
        self.spoken_by: dict[str, tuple[str, str]] = {}
        # Checked once: isinstance() against a runtime-checkable Protocol takes ~8 us.
        self._traced = tts if isinstance(tts, TracedTTS) else None

    def voices(self) -> list[str]:
        return self._tts.voices()

    async def synthesize(
        self, text: str, *, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        def note(backend: str, reason: str) -> None:
            self.spoken_by[text] = (backend, reason)

        if self._traced is not None:
            stream = self._traced.synthesize_traced(text, voice=voice, trace=note)
        else:
            note(self._tts.name, "")
            stream = self._tts.synthesize(text, voice=voice)
        async with contextlib.aclosing(stream) as pieces:
            async for piece in pieces:
                yield piece

    async def aclose(self) -> None:
        return None  # the shared backend belongs to the app


class Announcer:
    """What one client was told about the speaking backend."""

    def __init__(self, tts: TTSBackend) -> None:
        self._tts = tts
        self.current = active_backend(tts)

    def for_turn(self) -> TurnSpeakers:
        return TurnSpeakers(self._tts)

    def before(self, speakers: TurnSpeakers, message: dict[str, Any]) -> dict[str, Any] | None:
        """The ``backend`` event to send before ``message``, if it starts a chunk spoken by
        another backend than the client was last told about. Once it is sent, the caller
        sets :attr:`current`."""
        if message.get("action") != "sentence":
            return None
        spoken = speakers.spoken_by.get(message["data"])
        if spoken is None or spoken[0] == self.current:
            return None
        return protocol.backend_event(message["turn"], tts=spoken[0], reason=spoken[1])
