"""The voices a TTS backend offers, with what is known about them (for ``GET /voices``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from voicechat.tts.base import TTSBackend


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    name: str
    backend: str
    locale: str | None = None
    gender: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.backend,
            "locale": self.locale,
            "gender": self.gender,
        }


@runtime_checkable
class DescribedTTS(Protocol):
    """A backend that can say more about its voices than their names (and may look them up)."""

    async def describe_voices(self) -> list[VoiceInfo]: ...


async def describe_voices(tts: TTSBackend) -> list[VoiceInfo]:
    """Every voice of ``tts``, described as well as the backend can."""
    if isinstance(tts, DescribedTTS):
        return await tts.describe_voices()
    return [VoiceInfo(name, tts.name) for name in tts.voices()]
