"""Write a turn's speech to a file: ``.mp3`` as received, any other format through pydub with
the ffmpeg binary shipped in the ``imageio-ffmpeg`` wheel (nothing for the user to install)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicechat.errors import VoicechatError
from voicechat.pipeline.audio import duration_ms


@dataclass(frozen=True, slots=True)
class SavedAudio:
    path: Path
    bytes: int
    duration_ms: int


def pydub_audio_segment() -> Any:
    """pydub's ``AudioSegment``, set up to use the bundled ffmpeg.

    Imported on first use: pydub imports ``audioop`` (deprecated in 3.11, replaced by the
    ``audioop-lts`` package from 3.13) and warns at import that no ffmpeg is on PATH, which
    is true and does not matter, since its converter is set right after."""
    import imageio_ffmpeg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        from pydub import AudioSegment
    AudioSegment.converter = imageio_ffmpeg.get_ffmpeg_exe()
    return AudioSegment


def decode_mp3(mp3: bytes) -> Any:
    """The MP3 as a pydub ``AudioSegment`` (decoded by ffmpeg)."""
    segment_class = pydub_audio_segment()
    # codec given: pydub then needs no ffprobe, which imageio-ffmpeg does not ship
    return segment_class.from_file(io.BytesIO(mp3), format="mp3", codec="mp3")


def save_audio(mp3: bytes, path: Path) -> SavedAudio:
    """Write ``mp3`` to ``path``, converted to the format its suffix names (wav, flac, ogg, ...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("", "mp3"):
        path.write_bytes(mp3)
        return SavedAudio(path, len(mp3), duration_ms(mp3))
    if not mp3:
        raise VoicechatError(f"no audio to convert to {suffix}")
    segment = decode_mp3(mp3)
    try:
        with path.open("wb") as file:
            segment.export(file, format=suffix)
    except Exception as exc:  # pydub raises CouldntEncodeError with ffmpeg's output
        raise VoicechatError(f"cannot write {suffix} with ffmpeg: {exc}") from exc
    return SavedAudio(path, path.stat().st_size, len(segment))
