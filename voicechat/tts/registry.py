"""TTS backends by name, and fallback chains of them (``edge,piper``).

Adding a backend is one new module and one line in :data:`TTS_BACKENDS`. The chains are built
here, outside :mod:`voicechat.tts.base`, because :class:`FallbackTTS` itself builds on the
Protocol there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from voicechat.errors import ConfigError
from voicechat.registry import load_factory
from voicechat.tts.base import TTSBackend
from voicechat.tts.fallback import FallbackTTS

if TYPE_CHECKING:
    from voicechat.config import Settings


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
        names = [part.strip() for part in name.split(",")]
        if not all(names):
            raise ConfigError(f"empty name in the TTS chain {name!r}")
        members = [create_tts(part, settings) for part in names]
        return FallbackTTS(members, cooldown=settings.tts_cooldown)
    factory: TTSFactory = load_factory(TTS_BACKENDS, name, kind="TTS")
    return factory(settings)
