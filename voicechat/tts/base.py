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


@runtime_checkable
class PcmSpeaker(Protocol):
    """A backend that makes PCM itself (a local engine) and can hand it over unencoded, for a
    client that wants PCM (``/v1/audio/speech`` in any format but mp3, ``/v1/realtime``): its
    audio then never goes through an MP3 encoder and decoder on the way."""

    name: str

    def synthesize_pcm(
        self, text: str, *, sample_rate: int, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        """16-bit little-endian mono PCM at ``sample_rate``, in pieces of whole samples; the
        same errors as :meth:`TTSBackend.synthesize`."""
        ...
