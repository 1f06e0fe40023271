"""Real Piper synthesis with the packaged voice, decoded back to PCM."""

from __future__ import annotations

import array
import asyncio
import contextlib
import threading

import miniaudio
import pytest

from tests.conftest import ClientFactory
from tests.test_guarantees import mp3_of
from voicechat.config import Settings
from voicechat.errors import TTSFailed
from voicechat.pipeline.audio import duration_s
from voicechat.tts.base import PcmSpeaker, TTSBackend
from voicechat.tts.piper import DEFAULT_VOICE, PiperTTS, packaged_voices
from voicechat.tts.registry import create_tts

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def piper() -> PiperTTS:
    backend = create_tts("piper", Settings())
    assert isinstance(backend, PiperTTS)
    return backend


def decode(mp3: bytes, sample_rate: int) -> array.array[int]:
    decoded = miniaudio.decode(
        mp3, output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=sample_rate
    )
    return decoded.samples


def rms(samples: array.array[int]) -> float:
    return (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


async def synthesize(tts: TTSBackend, text: str, voice: str | None = None) -> bytes:
    return b"".join([piece async for piece in tts.synthesize(text, voice=voice)])


def test_piper_is_a_tts_backend_with_the_packaged_voice(piper: PiperTTS) -> None:
    assert isinstance(piper, TTSBackend)
    assert piper.voices() == [DEFAULT_VOICE]
    assert piper.sample_rate == 22050


async def test_piper_speech_decodes_to_non_silent_audio_of_plausible_length(
    piper: PiperTTS,
) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    mp3 = await synthesize(piper, text)
    samples = decode(mp3, piper.sample_rate)
    seconds = len(samples) / piper.sample_rate
    assert 1.5 < seconds < 6.0  # about 2.5 s of speech for nine words
    assert abs(seconds - duration_s(mp3)) < 0.1
    assert rms(samples) > 1000  # speech, not silence (full scale is 32767)


async def test_piper_hands_over_its_own_pcm_at_the_asked_rate(piper: PiperTTS) -> None:
    assert isinstance(piper, PcmSpeaker)
    text = "The quick brown fox jumps over the lazy dog."
    pieces = [p async for p in piper.synthesize_pcm(text, sample_rate=24000)]
    assert all(len(piece) % 2 == 0 for piece in pieces)  # whole 16-bit samples
    samples = array.array("h", b"".join(pieces))
    seconds = len(samples) / 24000
    assert 1.5 < seconds < 6.0
    assert rms(samples) > 1000


async def test_a_longer_sentence_gives_longer_speech(piper: PiperTTS) -> None:
    short = duration_s(await synthesize(piper, "Hello."))
    long = duration_s(
        await synthesize(piper, "Hello, this sentence is a good deal longer than that.")
    )
    assert long > 2 * short


async def test_piper_rejects_an_unknown_voice(piper: PiperTTS) -> None:
    with pytest.raises(TTSFailed, match="unknown piper voice"):
        await synthesize(piper, "Hello.", voice="nobody")


async def test_piper_says_nothing_for_text_with_nothing_to_say(piper: PiperTTS) -> None:
    assert await synthesize(piper, "   ") == b""
    assert await synthesize(piper, "... !") == b""


async def test_a_turn_spoken_by_piper_is_one_playable_mp3(
    voice_client: ClientFactory, piper: PiperTTS
) -> None:
    client, _ = await voice_client(tts=piper)
    events = await client.turn("What is the capital of France?")
    mp3 = mp3_of(events)
    samples = decode(mp3, piper.sample_rate)
    assert events[-1]["data"]["sentences"] == 2
    assert abs(len(samples) / piper.sample_rate - events[-1]["data"]["audio_ms"] / 1000) < 0.15
    assert rms(samples) > 1000


class CountingPiper(PiperTTS):
    """Piper that counts the sentences it renders at once."""

    def __init__(self, workers: int) -> None:
        super().__init__(packaged_voices(), workers=workers)
        self.running = self.most = 0
        self.started = threading.Event()
        self._count = threading.Lock()

    def _render(self, text: str, voice_name: str, rate: int) -> bytes:
        with self._count:
            self.running += 1
            self.most = max(self.most, self.running)
        self.started.set()
        try:
            return super()._render(text, voice_name, rate)
        finally:
            with self._count:
                self.running -= 1


async def test_piper_renders_no_more_sentences_at_once_than_its_workers() -> None:
    tts = CountingPiper(workers=1)
    await asyncio.gather(*(synthesize(tts, f"This is sentence number {i}.") for i in range(3)))
    assert tts.most == 1
    two = CountingPiper(workers=2)
    await asyncio.gather(*(synthesize(two, f"This is sentence number {i}.") for i in range(4)))
    assert two.most == 2


async def test_a_stopped_sentence_keeps_its_worker_until_its_render_ends() -> None:
    tts = CountingPiper(workers=1)
    stopped = asyncio.ensure_future(
        synthesize(tts, "A long sentence that is stopped mid-way. " * 4)
    )
    await asyncio.to_thread(tts.started.wait, 10)
    stopped.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await stopped
    await synthesize(tts, "The next one.")
    assert tts.most == 1
