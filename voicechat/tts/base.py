"""The TTS backend contract and the registry that selects a backend by name.

Adding a backend is one new module and one line in :data:`TTS_BACKENDS`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from voicechat.errors import ConfigError
from voicechat.registry import load_factory

if TYPE_CHECKING:
    from voicechat.config import Settings


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


TTSFactory = Callable[["Settings"], TTSBackend]

# name → "module:factory"; imported lazily so an unused backend costs nothing.
TTS_BACKENDS: Final[dict[str, str]] = {
    "edge": "voicechat.tts.edge:create",
    "openai": "voicechat.tts.openai:create",
    "piper": "voicechat.tts.piper:create",
    "tone": "voicechat.tts.tone:create",
}


def create_tts(name: str, settings: Settings) -> TTSBackend:
    """Build the backend registered as ``name``, or the fallback chain of a comma-separated
    list of names (``edge,piper``)."""
    if "," in name:
        from voicechat.tts.fallback import FallbackTTS

        names = [part.strip() for part in name.split(",")]
        if not all(names):
            raise ConfigError(f"empty name in the TTS chain {name!r}")
        members = [create_tts(part, settings) for part in names]
        return FallbackTTS(members, cooldown=settings.tts_cooldown)
    factory: TTSFactory = load_factory(TTS_BACKENDS, name, kind="TTS")
    return factory(settings)
