"""``tone``: a deterministic TTS for tests and benchmarks.

Each chunk becomes a sine tone whose pitch follows the text (and the voice) and whose length
follows the number of characters, encoded to real MP3. The same text always gives the same
bytes, so a paused-and-resumed turn can be compared byte for byte with an unpaused one.
"""

from __future__ import annotations

import asyncio
import math
import zlib
from array import array
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from voicechat.errors import TTSFailed
from voicechat.pipeline.audio import encode_mp3, split_frames, split_pcm
from voicechat.pipeline.speakable import has_speech

if TYPE_CHECKING:
    from voicechat.config import Settings

VOICES = {"tone-low": 180.0, "tone-high": 360.0}


class ToneTTS:
    """Deterministic tones; ``latency`` seconds before the first piece, ``piece_ms`` per frame,
    ``piece_delay`` seconds between pieces (to model a streaming service)."""

    name = "tone"

    def __init__(
        self,
        *,
        sample_rate: int = 22050,
        ms_per_char: int = 30,
        piece_ms: int = 500,
        latency: float = 0.0,
        piece_delay: float = 0.0,
    ) -> None:
        self.sample_rate = sample_rate
        self._ms_per_char = ms_per_char
        self._piece_ms = piece_ms
        self._latency = latency
        self._piece_delay = piece_delay

    def voices(self) -> list[str]:
        return list(VOICES)

    def use_sample_rate(self, rate: int) -> None:
        self.sample_rate = rate

    def render(self, text: str, voice: str | None = None) -> bytes:
        """The whole MP3 for ``text`` (what ``synthesize`` yields, joined)."""
        pcm = self.render_pcm(text, voice, sample_rate=self.sample_rate)
        return encode_mp3(pcm, sample_rate=self.sample_rate)

    def render_pcm(self, text: str, voice: str | None = None, *, sample_rate: int) -> bytes:
        base = VOICES[voice or "tone-low"]
        freq = base + zlib.crc32(text.encode()) % 200
        count = sample_rate * self._ms_per_char * max(1, len(text)) // 1000
        step = 2 * math.pi * freq / sample_rate
        return array("h", (int(8000 * math.sin(step * i)) for i in range(count))).tobytes()

    async def synthesize(
        self, text: str, *, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        if await self._begin(text, voice):
            pieces = split_frames(self.render(text, voice), max_ms=self._piece_ms)
            async for piece in self._paced(pieces):
                yield piece

    async def synthesize_pcm(
        self, text: str, *, sample_rate: int, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        if await self._begin(text, voice):
            pcm = self.render_pcm(text, voice, sample_rate=sample_rate)
            pieces = split_pcm(pcm, sample_rate=sample_rate, max_ms=self._piece_ms)
            async for piece in self._paced(pieces):
                yield piece

    async def _begin(self, text: str, voice: str | None) -> bool:
        if voice is not None and voice not in VOICES:
            raise TTSFailed(f"unknown voice {voice!r}", backend=self.name)
        if not has_speech(text):
            return False
        if self._latency:
            await asyncio.sleep(self._latency)
        return True

    async def _paced(self, pieces: list[bytes]) -> AsyncGenerator[bytes, None]:
        for index, piece in enumerate(pieces):
            if index and self._piece_delay:
                await asyncio.sleep(self._piece_delay)
            yield piece

    async def aclose(self) -> None:
        return None


def create(settings: Settings) -> ToneTTS:
    return ToneTTS()
