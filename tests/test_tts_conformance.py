"""One contract, every TTS backend: tone and piper locally, edge and openai through their real
libraries against the loopback services, and a fallback chain of the two.

* speakable text gives whole MP3 frames at the backend's declared sample rate;
* empty or unspeakable text gives no audio, raises nothing and reaches no service;
* an unknown voice fails before any request; a bad rate or pitch is refused at start-up;
* closing the stream mid-sentence closes its connection (the service sees it go);
* an answer with no audio is a failure, never an empty success.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import eventually
from tests.conftest import test_settings as settings_for
from tests.edge_upstream import EdgeUpstream
from tests.upstream import Upstream
from voicechat.config import Settings
from voicechat.errors import ConfigError, TTSFailed
from voicechat.pipeline.audio import duration_s, iter_frames
from voicechat.tts.base import TTSBackend
from voicechat.tts.edge import EdgeTTS
from voicechat.tts.fallback import FallbackTTS
from voicechat.tts.openai import OpenAITTS
from voicechat.tts.piper import PiperTTS
from voicechat.tts.registry import create_tts
from voicechat.tts.tone import ToneTTS

pytestmark = pytest.mark.timeout(120)
ALL = ["tone", "piper", "edge", "openai", "chain"]
REMOTE = ["edge", "openai", "chain"]


@dataclass
class Subject:
    tts: TTSBackend
    requests: Callable[[], int] = lambda: 0  # requests the services received
    hold: Callable[[], None] | None = None  # the service sends one piece, then waits
    gone: Callable[[], int] | None = None  # connections the client closed mid-answer
    silence: Callable[[], None] | None = None  # the service answers with no audio


@pytest.fixture(scope="module")
def piper() -> PiperTTS:
    backend = create_tts("piper", Settings())
    assert isinstance(backend, PiperTTS)
    return backend


@pytest.fixture
async def subject(
    request: pytest.FixtureRequest,
    edge_upstream: EdgeUpstream,
    upstream: tuple[Upstream, str],
) -> AsyncIterator[Subject]:
    speech, url = upstream
    name = request.param
    if name == "tone":
        yield Subject(ToneTTS())
    elif name == "piper":
        yield Subject(request.getfixturevalue("piper"))
    elif name == "edge":
        yield Subject(
            EdgeTTS(),
            requests=lambda: edge_upstream.handshakes,
            hold=lambda: setattr(edge_upstream, "fault", "hold"),
            gone=lambda: edge_upstream.client_gone,
            silence=lambda: setattr(edge_upstream, "fault", "no_audio"),
        )
    elif name == "openai":
        tts = OpenAITTS(api_key="k", base_url=url, speed=1.0)
        speech.speech_chunk = 2048
        yield Subject(
            tts,
            requests=lambda: len(speech.speech_requests),
            hold=lambda: setattr(speech, "speech_fault", "hold"),
            gone=lambda: speech.speech_disconnects,
            silence=lambda: setattr(speech, "speech_fault", "empty"),
        )
        await tts.aclose()
    else:
        openai_tts = OpenAITTS(api_key="k", base_url=url)

        def silence_both() -> None:
            edge_upstream.fault = "no_audio"
            speech.speech_fault = "empty"

        yield Subject(
            FallbackTTS([EdgeTTS(), openai_tts]),
            requests=lambda: edge_upstream.handshakes + len(speech.speech_requests),
            hold=lambda: setattr(edge_upstream, "fault", "hold"),
            gone=lambda: edge_upstream.client_gone,
            silence=silence_both,
        )
        await openai_tts.aclose()


async def speak(tts: TTSBackend, text: str, voice: str | None = None) -> list[bytes]:
    return [piece async for piece in tts.synthesize(text, voice=voice)]


@pytest.mark.parametrize("subject", ALL, indirect=True)
async def test_speech_comes_as_whole_frames_at_the_declared_sample_rate(
    subject: Subject,
) -> None:
    pieces = await speak(subject.tts, "The capital of France is Paris.")
    mp3 = b"".join(pieces)
    assert pieces and all(pieces)
    assert sum(duration_s(p) for p in pieces) == pytest.approx(duration_s(mp3))
    assert {f.sample_rate for f in iter_frames(mp3)} == {subject.tts.sample_rate}
    assert 0.5 < duration_s(mp3) < 6


@pytest.mark.parametrize("subject", ALL, indirect=True)
@pytest.mark.parametrize("text", ["", "   ", "...", " — !? ", "\n\n"])
async def test_empty_and_unspeakable_text_give_no_audio_and_reach_no_service(
    subject: Subject, text: str
) -> None:
    assert await speak(subject.tts, text) == []
    assert subject.requests() == 0


@pytest.mark.parametrize("subject", ALL, indirect=True)
async def test_an_unknown_voice_fails_before_any_request(subject: Subject) -> None:
    assert "no-such-voice" not in subject.tts.voices()
    with pytest.raises(TTSFailed, match="unknown"):
        await speak(subject.tts, "Hello there.", voice="no-such-voice")
    assert subject.requests() == 0


BAD_SETTINGS = [
    ("piper", {"piper_length_scale": 0.0}),
    ("edge", {"edge_rate": "10%"}),
    ("edge", {"edge_rate": "+10"}),
    ("edge", {"edge_pitch": "+10%"}),
    ("edge", {"edge_volume": "loud"}),
    ("openai", {"openai_tts_speed": 9.0}),
    ("edge,piper", {"edge_pitch": "high"}),
]


@pytest.mark.parametrize(("names", "bad"), BAD_SETTINGS)
def test_a_bad_rate_pitch_or_volume_is_refused_at_start_up(names: str, bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        create_tts(names, settings_for(**bad))


@pytest.mark.parametrize("subject", REMOTE, indirect=True)
async def test_closing_the_stream_mid_sentence_closes_its_connection(subject: Subject) -> None:
    assert subject.hold is not None and subject.gone is not None
    subject.hold()
    stream = subject.tts.synthesize("The capital of France is Paris.")
    async with contextlib.aclosing(stream):
        assert await anext(stream)
    gone = subject.gone
    await eventually(lambda: gone() == 1)


@pytest.mark.parametrize("subject", ["tone", "piper"], indirect=True)
async def test_closing_a_local_stream_mid_sentence_leaves_nothing_running(
    subject: Subject,
) -> None:
    baseline = len(asyncio.all_tasks())
    stream = subject.tts.synthesize("The capital of France is Paris. And of Italy, Rome.")
    async with contextlib.aclosing(stream):
        assert await anext(stream)
    assert len(asyncio.all_tasks()) == baseline


@pytest.mark.parametrize("subject", REMOTE, indirect=True)
async def test_an_answer_without_audio_is_a_failure(subject: Subject) -> None:
    assert subject.silence is not None
    subject.silence()
    with pytest.raises(TTSFailed):
        await speak(subject.tts, "The capital of France is Paris.")
