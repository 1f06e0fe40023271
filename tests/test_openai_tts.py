"""The ``openai`` TTS backend: the real openai SDK against the loopback speech endpoint."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.conftest import eventually
from tests.upstream import Upstream
from voicechat.errors import ConfigError, NoAudio, TTSFailed
from voicechat.pipeline.audio import duration_s, iter_frames
from voicechat.tts.mp3stream import FrameAligner
from voicechat.tts.openai import OpenAITTS
from voicechat.tts.tone import ToneTTS

SENTENCE = "The capital of France is Paris."
MakeTTS = Callable[..., OpenAITTS]


@pytest.fixture
async def openai_tts(upstream: tuple[Upstream, str]) -> AsyncIterator[MakeTTS]:
    """``openai_tts(**options)`` → an OpenAITTS on the loopback endpoint, closed after."""
    made: list[OpenAITTS] = []

    def make(**options: Any) -> OpenAITTS:
        made.append(OpenAITTS(api_key="test-key", base_url=upstream[1], **options))
        return made[-1]

    yield make
    for tts in made:
        await tts.aclose()


def audio_frames(mp3: bytes) -> bytes:
    """The audio frames of a file: without its ID3 tag and Info header frame."""
    aligner = FrameAligner()
    return aligner.feed(mp3)


async def speak(tts: OpenAITTS, text: str = SENTENCE, voice: str | None = None) -> bytes:
    return b"".join([piece async for piece in tts.synthesize(text, voice=voice)])


async def test_the_recorded_mp3_comes_through_as_its_audio_frames(
    upstream: tuple[Upstream, str], openai_tts: MakeTTS
) -> None:
    state, _ = upstream
    mp3 = await speak(openai_tts(model="tts-test"), voice="coral")
    assert state.speech_mp3.startswith(b"ID3")  # the recording is a file ...
    assert mp3 == audio_frames(state.speech_mp3)  # ... its frames go through unchanged
    assert mp3 and state.speech_mp3.endswith(mp3)
    request = state.speech_requests[0]
    assert request == {
        "model": "tts-test",
        "voice": "coral",
        "input": SENTENCE,
        "response_format": "mp3",
    }


async def test_a_speed_other_than_1_is_sent(
    upstream: tuple[Upstream, str], openai_tts: MakeTTS
) -> None:
    await speak(openai_tts(speed=1.25))
    assert upstream[0].speech_requests[0]["speed"] == 1.25


@pytest.mark.parametrize("speed", [0.1, 5.0])
def test_a_speed_out_of_range_is_a_config_error(speed: float) -> None:
    with pytest.raises(ConfigError):
        OpenAITTS(api_key="k", base_url=None, speed=speed)


async def test_an_unknown_voice_or_nothing_to_say_never_reaches_the_endpoint(
    upstream: tuple[Upstream, str], openai_tts: MakeTTS
) -> None:
    tts = openai_tts()
    with pytest.raises(TTSFailed, match="unknown openai voice"):
        await speak(tts, voice="nobody")
    assert await speak(tts, " ... ") == b""
    assert upstream[0].speech_requests == []


@pytest.mark.parametrize(
    ("status", "words"),
    [(401, "API key"), (404, "model"), (429, "rate limiting"), (500, "HTTP 500")],
)
async def test_http_errors_are_tts_failures_in_plain_words(
    upstream: tuple[Upstream, str], openai_tts: MakeTTS, status: int, words: str
) -> None:
    upstream[0].fail_status = status
    with pytest.raises(TTSFailed, match=words) as caught:
        await speak(openai_tts())
    assert caught.value.backend == "openai"
    assert len(upstream[0].speech_requests) == 1  # no retries: a chain moves on instead


async def test_an_empty_body_is_a_no_audio_failure(
    upstream: tuple[Upstream, str], openai_tts: MakeTTS
) -> None:
    upstream[0].speech_fault = "empty"
    with pytest.raises(NoAudio):
        await speak(openai_tts())


async def test_a_body_that_breaks_mid_stream_is_a_failure(
    upstream: tuple[Upstream, str], openai_tts: MakeTTS
) -> None:
    upstream[0].speech_fault = "break"
    upstream[0].speech_chunk = 2048
    with pytest.raises(TTSFailed):
        await speak(openai_tts())


async def test_closing_the_stream_mid_sentence_closes_the_http_stream(
    upstream: tuple[Upstream, str], openai_tts: MakeTTS
) -> None:
    state, _ = upstream
    state.speech_fault = "hold"  # one chunk, then nothing until released
    stream = openai_tts().synthesize(SENTENCE)
    async with contextlib.aclosing(stream):
        assert await anext(stream)
    await eventually(lambda: state.speech_disconnects == 1)
    assert state.speech_completed == 0


async def test_audio_at_another_sample_rate_is_converted_to_24_khz(
    upstream: tuple[Upstream, str], openai_tts: MakeTTS
) -> None:
    state, _ = upstream
    state.speech_mp3 = ToneTTS(sample_rate=22050).render(SENTENCE)
    mp3 = await speak(openai_tts())
    assert {f.sample_rate for f in iter_frames(mp3)} == {24000}
    assert duration_s(mp3) == pytest.approx(duration_s(state.speech_mp3), abs=0.15)
