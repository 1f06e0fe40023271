"""The TTS backend contract. The registry that selects a backend (or a fallback chain) by name
is :mod:`voicechat.tts.registry`: adding a backend is one new module and one line there.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol, runtime_checkable


@runtime_checkable
class TTSBackend(Protocol):
    """Speaks one chunk of text. ``synthesize`` yields MP3 bytes (whole frames) as they are
    ready and raises :class:`~voicechat.errors.TTSFailed` when it cannot; every MP3 it
    yields has ``sample_rate``, so the MP3s of a turn concatenate into one stream."""

    name: str
    sample_rate: int

    def voices(self) -> list[str]:
        """The voice names ``synthesize`` accepts; the first is the default."""
        ...

    def synthesize(self, text: str, *, voice: str | None = None) -> AsyncGenerator[bytes, None]: ...

    async def aclose(self) -> None: ...
