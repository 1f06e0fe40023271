"""One sample rate per turn: the MP3s of a turn must concatenate into one playable stream, and
decoders do not follow a change of sample rate mid-stream.

A fallback chain speaks at the rate of its first backend. A backend that can produce another
rate itself (:class:`RateSelectable`: Piper and tone resample their PCM before encoding) is
told to; any other one is wrapped in :class:`ResampledTTS`, which decodes each chunk's MP3,
resamples it (miniaudio) and encodes it again (lameenc).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Protocol, runtime_checkable

import miniaudio

from voicechat.errors import TTSFailed
from voicechat.pipeline.audio import encode_mp3, split_frames
from voicechat.tts.base import TTSBackend
from voicechat.tts.catalog import VoiceInfo, describe_voices

PIECE_MS = 1000


def resample_pcm16(pcm: bytes, *, from_rate: int, to_rate: int) -> bytes:
    """Mono 16-bit PCM at ``from_rate`` → the same at ``to_rate``."""
    if from_rate == to_rate or not pcm:
        return pcm
    fmt = miniaudio.SampleFormat.SIGNED16
    return bytes(miniaudio.convert_frames(fmt, 1, from_rate, pcm, fmt, 1, to_rate))


def transcode_mp3(mp3: bytes, *, to_rate: int) -> bytes:
    """Decode ``mp3`` to mono PCM at ``to_rate`` and encode it again, headerless."""
    decoded = miniaudio.decode(
        mp3, output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=to_rate
    )
    return encode_mp3(decoded.samples.tobytes(), sample_rate=to_rate)


@runtime_checkable
class RateSelectable(Protocol):
    def use_sample_rate(self, rate: int) -> None:
        """From now on, produce MP3 at ``rate`` (and report it as ``sample_rate``)."""
        ...


class ResampledTTS:
    """``inner`` at another sample rate. Each chunk is collected whole before it is decoded
    (MP3 frames lean on earlier ones), so its first audio comes when ``inner`` has finished."""

    def __init__(self, inner: TTSBackend, rate: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.sample_rate = rate

    def voices(self) -> list[str]:
        return self.inner.voices()

    async def describe_voices(self) -> list[VoiceInfo]:
        return await describe_voices(self.inner)

    async def synthesize(
        self, text: str, *, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        async with contextlib.aclosing(self.inner.synthesize(text, voice=voice)) as pieces:
            mp3 = b"".join([piece async for piece in pieces])
        if not mp3:
            return
        try:
            converted = await asyncio.to_thread(transcode_mp3, mp3, to_rate=self.sample_rate)
        except miniaudio.DecodeError as exc:
            message = f"{self.name} sent audio that does not decode"
            raise TTSFailed(message, backend=self.name) from exc
        for piece in split_frames(converted, max_ms=PIECE_MS):
            yield piece

    async def aclose(self) -> None:
        await self.inner.aclose()


def at_rate(tts: TTSBackend, rate: int) -> TTSBackend:
    """``tts`` producing MP3 at ``rate``: as it is, told to, or wrapped."""
    if tts.sample_rate == rate:
        return tts
    if isinstance(tts, RateSelectable):
        tts.use_sample_rate(rate)
        return tts
    return ResampledTTS(tts, rate)
