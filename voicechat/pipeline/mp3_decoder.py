"""MP3 → 16-bit mono PCM as it streams (miniaudio), for clients that want PCM.

A leaf module like :mod:`voicechat.pipeline.audio` (it imports nothing of voicechat but
``errors``), so the backends may use it too: a fallback chain asked for PCM decodes the MP3 of
a member that cannot make PCM itself.
"""

from __future__ import annotations

import asyncio

import miniaudio

from voicechat.errors import TTSFailed


def decode_mp3(mp3: bytes, *, sample_rate: int) -> bytes:
    """Mono 16-bit PCM at ``sample_rate`` of a whole MP3 stream."""
    decoded = miniaudio.decode(
        mp3, output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=sample_rate
    )
    return bytes(decoded.samples.tobytes())


class Mp3StreamDecoder:
    """One MP3 stream in pieces, PCM out as it decodes. MP3 frames lean on the ones before
    them, so what the stream has so far is decoded again as each piece arrives, off the loop,
    and the PCM not yet given out is handed on, less a frame's worth held back as a guard
    against a decoder that revises the end of a prefix (miniaudio's does not, measured). That
    decodes a stream about (pieces/2) times over: a few ms for a sentence of 1-2 pieces."""

    def __init__(self, *, sample_rate: int, backend: str = "decoder") -> None:
        self._rate = sample_rate
        self._backend = backend
        self._guard = 2 * sample_rate // 40  # 25 ms of 16-bit samples
        self._mp3 = b""
        self._given = 0  # bytes of PCM handed on

    async def add(self, mp3: bytes) -> bytes:
        """The PCM that ``mp3`` makes ready."""
        self._mp3 += mp3
        pcm = await self._decode()
        ready = len(pcm) - self._guard
        if ready <= self._given:
            return b""
        ready -= ready % 2
        out, self._given = pcm[self._given : ready], ready
        return out

    async def flush(self) -> bytes:
        """The stream ended: all of its PCM not given out yet; the decoder starts afresh."""
        pcm = await self._decode() if self._mp3 else b""
        out = pcm[self._given :]
        self._mp3, self._given = b"", 0
        return out

    async def _decode(self) -> bytes:
        try:
            return await asyncio.to_thread(decode_mp3, self._mp3, sample_rate=self._rate)
        except miniaudio.DecodeError as exc:
            message = f"{self._backend} sent MP3 that does not decode"
            raise TTSFailed(message, backend=self._backend) from exc
