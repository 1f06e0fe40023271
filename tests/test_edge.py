"""The ``edge`` backend: the real edge-tts library against the loopback Edge service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import edge_tts.communicate
import pytest
from edge_tts.drm import DRM

from tests.conftest import eventually, free_port
from tests.edge_upstream import EdgeUpstream, spoken_text
from voicechat.errors import ConfigError, NoAudio, TTSFailed
from voicechat.pipeline.audio import duration_s, iter_frames
from voicechat.tts.edge import BUILTIN_VOICES, EdgeTTS

SENTENCE = "The capital of France is Paris."


async def speak(tts: EdgeTTS, text: str = SENTENCE, voice: str | None = None) -> bytes:
    return b"".join([piece async for piece in tts.synthesize(text, voice=voice)])


@pytest.fixture(autouse=True)
def keep_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # On a 403 the library corrects its clock from the server's Date header, process-wide.
    monkeypatch.setattr(DRM, "clock_skew_seconds", 0.0)


async def test_edge_passes_the_recorded_mp3_through_unchanged_in_whole_frames(
    edge_upstream: EdgeUpstream,
) -> None:
    pieces = [piece async for piece in EdgeTTS().synthesize(SENTENCE)]
    assert b"".join(pieces) == edge_upstream.audio
    assert len(pieces) > 1  # streamed as it arrives, not collected
    # Each piece holds whole frames, though the service's messages cut frames anywhere.
    assert sum(duration_s(p) for p in pieces) == pytest.approx(duration_s(edge_upstream.audio))
    assert {f.sample_rate for f in iter_frames(b"".join(pieces))} == {24000}


async def test_edge_asks_for_the_voice_and_prosody_it_was_given(
    edge_upstream: EdgeUpstream,
) -> None:
    tts = EdgeTTS(rate="+10%", pitch="-5Hz", volume="-20%")
    await speak(tts, voice="en-GB-SoniaNeural")
    output = edge_upstream.configs[0]["context"]["synthesis"]["audio"]["outputFormat"]
    assert output == "audio-24khz-48kbitrate-mono-mp3"
    ssml = edge_upstream.ssml[0]
    assert "(en-GB, SoniaNeural)" in ssml
    assert "rate='+10%'" in ssml and "pitch='-5Hz'" in ssml and "volume='-20%'" in ssml


async def test_ampersand_brackets_and_quotes_reach_the_service_as_characters(
    edge_upstream: EdgeUpstream,
) -> None:
    text = """Tom & Jerry's "best" show: 3 < 4 > 2."""
    await speak(EdgeTTS(), text)
    ssml = edge_upstream.ssml[0]
    assert spoken_text(ssml) == text  # an XML parser reads back exactly what was said
    assert "&amp;amp;" not in ssml and "&apos;" not in ssml and "&quot;" not in ssml


@pytest.mark.parametrize(
    "options",
    [{"rate": "10%"}, {"rate": "fast"}, {"pitch": "+5%"}, {"pitch": "5Hz"}, {"volume": "+0"}],
)
def test_bad_rate_pitch_or_volume_is_a_config_error(options: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        EdgeTTS(**options)


async def test_an_unknown_voice_fails_before_connecting(edge_upstream: EdgeUpstream) -> None:
    with pytest.raises(TTSFailed, match="unknown edge voice"):
        await speak(EdgeTTS(), voice="en-US-NobodyNeural")
    assert edge_upstream.handshakes == 0


async def test_text_with_nothing_to_say_never_reaches_the_service(
    edge_upstream: EdgeUpstream,
) -> None:
    assert await speak(EdgeTTS(), "") == b""
    assert await speak(EdgeTTS(), " ... !? ") == b""
    assert edge_upstream.handshakes == 0


@pytest.mark.parametrize(
    ("status", "words"),
    [(403, r"refused us \(403\)"), (429, r"rate limiting us \(429\)"), (503, "HTTP 503")],
)
async def test_a_refused_handshake_is_a_tts_failure_in_plain_words(
    edge_upstream: EdgeUpstream, status: int, words: str
) -> None:
    edge_upstream.handshake_status = status
    with pytest.raises(TTSFailed, match=words) as caught:
        await speak(EdgeTTS())
    assert caught.value.backend == "edge" and caught.value.code == "tts_failed"
    # The library retries a 403 once, after correcting its clock from the server's Date.
    assert edge_upstream.handshakes == (2 if status == 403 else 1)


async def test_a_socket_closed_before_turn_end_is_a_failure_not_a_short_success(
    edge_upstream: EdgeUpstream,
) -> None:
    edge_upstream.fault = "close_early"
    with pytest.raises(TTSFailed, match="before the end of the sentence"):
        await speak(EdgeTTS())


async def test_a_turn_without_audio_is_a_no_audio_failure(edge_upstream: EdgeUpstream) -> None:
    edge_upstream.fault = "no_audio"
    with pytest.raises(NoAudio):
        await speak(EdgeTTS())


async def test_a_service_that_goes_quiet_hits_the_idle_timeout_and_is_hung_up_on(
    edge_upstream: EdgeUpstream,
) -> None:
    edge_upstream.fault = "hang"
    with pytest.raises(TTSFailed, match="sent nothing"):
        await speak(EdgeTTS(idle_timeout=0.3))
    await eventually(lambda: edge_upstream.client_gone == 1)


async def test_a_refused_connection_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", f"ws://127.0.0.1:{port}/edge/v1?x=1")
    with pytest.raises(TTSFailed, match="cannot reach"):
        await speak(EdgeTTS())


@pytest.fixture
async def silent_tls_port() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers a TLS handshake."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_connecting_gives_up_after_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch, silent_tls_port: int
) -> None:
    url = f"wss://127.0.0.1:{silent_tls_port}/edge/v1?x=1"
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", url)
    with pytest.raises(TTSFailed, match="did not answer in time"):
        await speak(EdgeTTS(connect_timeout=0.2, idle_timeout=30))


async def test_closing_the_stream_mid_sentence_closes_the_socket(
    edge_upstream: EdgeUpstream,
) -> None:
    edge_upstream.fault = "hold"  # one audio message, then nothing until released
    stream = EdgeTTS().synthesize(SENTENCE)
    async with contextlib.aclosing(stream):
        assert await anext(stream)
    await eventually(lambda: edge_upstream.client_gone == 1)
    assert edge_upstream.open == 0


async def test_parallel_connections_are_capped(edge_upstream: EdgeUpstream) -> None:
    edge_upstream.fault = "hold"
    tts = EdgeTTS(max_connections=2)
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(speak(tts)) for _ in range(4)]
        await eventually(lambda: edge_upstream.open == 2)
        assert edge_upstream.handshakes == 2  # the other two wait for a free slot
        edge_upstream.release.set()
    assert all(task.result() == edge_upstream.audio for task in tasks)
    assert edge_upstream.peak == 2 and edge_upstream.completed == 4


async def test_the_voice_list_is_looked_up_and_then_accepted(
    edge_upstream: EdgeUpstream,
) -> None:
    tts = EdgeTTS()
    assert "de-AT-JonasNeural" not in tts.voices()
    described = await tts.describe_voices()
    jonas = next(v for v in described if v.name == "de-AT-JonasNeural")
    assert (jonas.backend, jonas.locale, jonas.gender) == ("edge", "de-AT", "Male")
    assert "de-AT-JonasNeural" in tts.voices()
    assert tts.voices()[0] == BUILTIN_VOICES[0][0]  # the default stays first
    assert await speak(tts, voice="de-AT-JonasNeural") == edge_upstream.audio


async def test_without_the_voice_list_the_built_in_voices_are_described(
    edge_upstream: EdgeUpstream,
) -> None:
    edge_upstream.voices_status = 503
    described = await EdgeTTS().describe_voices()
    assert [v.name for v in described] == [name for name, _ in BUILTIN_VOICES]
