"""Whole turns through the server on recordings: the real edge-tts and openai libraries
against loopback services, fallbacks the client is told about, and injected failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import edge_tts.communicate
import miniaudio
import pytest

from tests.conftest import ClientFactory, VoiceClient, audio_of, free_port
from tests.conftest import test_settings as settings_for
from tests.edge_upstream import EdgeUpstream, spoken_text
from tests.test_guarantees import mp3_of
from tests.upstream import Upstream
from voicechat.llm.openai import OpenAILLM
from voicechat.pipeline.audio import duration_ms, iter_frames
from voicechat.tts.base import TTSBackend
from voicechat.tts.mp3stream import FrameAligner
from voicechat.tts.registry import create_tts
from voicechat.tts.tone import ToneTTS

pytestmark = pytest.mark.timeout(120)
CAPITAL = "What is the capital of France?"


@pytest.fixture
async def backends() -> AsyncIterator[list[TTSBackend]]:
    """Backends made by a test, closed after it."""
    made: list[TTSBackend] = []
    yield made
    for tts in made:
        await tts.aclose()


def make(backends: list[TTSBackend], names: str, **settings: Any) -> TTSBackend:
    backends.append(create_tts(names, settings_for(**settings)))
    return backends[-1]


def actions(events: list[dict[str, Any]]) -> list[str]:
    return [e["action"] for e in events]


async def test_an_edge_turn_delivers_the_recorded_mp3_byte_for_byte(
    edge_upstream: EdgeUpstream, voice_client: ClientFactory, backends: list[TTSBackend]
) -> None:
    client, _ = await voice_client(tts=make(backends, "edge"))
    events = await client.turn(CAPITAL)
    sentences = [e["data"] for e in events if e["action"] == "sentence"]
    assert sorted(spoken_text(s) for s in edge_upstream.ssml) == sorted(sentences)
    assert len(sentences) == 2
    assert mp3_of(events) == edge_upstream.audio * 2  # the recording, once per sentence
    assert events[-1]["data"]["audio_ms"] == 2 * duration_ms(edge_upstream.audio)


async def test_an_openai_tts_turn_delivers_the_recordings_audio_frames(
    upstream: tuple[Upstream, str], voice_client: ClientFactory, backends: list[TTSBackend]
) -> None:
    state, url = upstream
    client, _ = await voice_client(tts=make(backends, "openai", openai_base_url=url))
    events = await client.turn(CAPITAL)
    frames = FrameAligner().feed(state.speech_mp3)  # the file without its tag and header
    assert mp3_of(events) == frames * 2
    assert sorted(r["input"] for r in state.speech_requests) == sorted(
        e["data"] for e in events if e["action"] == "sentence"
    )


async def test_openai_llm_and_edge_tts_together_through_the_real_libraries(
    upstream: tuple[Upstream, str],
    edge_upstream: EdgeUpstream,
    voice_client: ClientFactory,
    backends: list[TTSBackend],
) -> None:
    state, url = upstream
    llm = OpenAILLM(api_key="k", base_url=url, model="gpt-4o-mini")
    client, _ = await voice_client(llm=llm, tts=make(backends, "edge"))
    events = await client.turn("Count to five.")
    assert events[-1]["data"]["text"] == "One. Two. Three. Four. Five."
    assert mp3_of(events) == edge_upstream.audio * 5
    await llm.aclose()


@pytest.mark.parametrize("status", [403, 429, 503])
async def test_a_refused_edge_service_gives_tts_failed_and_the_session_goes_on(
    edge_upstream: EdgeUpstream,
    voice_client: ClientFactory,
    backends: list[TTSBackend],
    status: int,
) -> None:
    client, _ = await voice_client(tts=make(backends, "edge"))
    edge_upstream.handshake_status = status
    events = await client.turn(CAPITAL)
    errors = [e for e in events if e["action"] == "error"]
    assert [(e["data"]["code"], e["data"]["sentence"]) for e in errors] == [
        ("tts_failed", 0),
        ("tts_failed", 1),
    ]
    assert str(status) in errors[0]["data"]["message"]
    assert audio_of(events) == [] and events[-1]["action"] == "done"
    edge_upstream.handshake_status = None
    assert mp3_of(await client.turn(CAPITAL)) == edge_upstream.audio * 2


@pytest.mark.parametrize("fault", ["no_audio", "close_early"])
async def test_a_broken_edge_answer_gives_tts_failed_and_the_session_goes_on(
    edge_upstream: EdgeUpstream,
    voice_client: ClientFactory,
    backends: list[TTSBackend],
    fault: Any,
) -> None:
    client, _ = await voice_client(tts=make(backends, "edge"))
    edge_upstream.fault = fault
    events = await client.turn(CAPITAL)
    assert [e["data"]["code"] for e in events if e["action"] == "error"] == ["tts_failed"] * 2
    edge_upstream.fault = None
    assert mp3_of(await client.turn(CAPITAL)) == edge_upstream.audio * 2


def decode(mp3: bytes, rate: int) -> Any:
    return miniaudio.decode(mp3, nchannels=1, sample_rate=rate)


async def test_when_edge_fails_mid_turn_piper_speaks_on_in_one_stream_at_one_rate(
    edge_upstream: EdgeUpstream, voice_client: ClientFactory, backends: list[TTSBackend]
) -> None:
    edge_upstream.handshake_status, edge_upstream.refuse_after = 503, 1
    chain = make(backends, "edge,piper")
    client, _ = await voice_client(tts=chain, lookahead=0)  # one sentence at a time
    events = await client.turn(CAPITAL)
    assert actions(events).count("backend") == 1
    switch = events[actions(events).index("backend")]
    assert switch == {
        "action": "backend",
        "turn": "t1",
        "data": {"tts": "piper", "reason": "edge failed: the edge service answered with HTTP 503"},
    }
    following = events[actions(events).index("backend") + 1]
    assert following["action"] == "sentence" and following["index"] == 1
    mp3 = mp3_of(events)
    assert mp3.startswith(edge_upstream.audio)  # sentence 0: edge's bytes, unchanged
    assert {f.sample_rate for f in iter_frames(mp3)} == {24000}  # piper's resampled to match
    decoded = decode(mp3, 24000)
    assert decoded.duration == pytest.approx(events[-1]["data"]["audio_ms"] / 1000, abs=0.1)
    piper_part = decode(mp3[len(edge_upstream.audio) :], 24000).samples
    assert max(abs(s) for s in piper_part) > 8000  # speech, not silence


async def test_the_client_is_told_which_backend_speaks_when_edge_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, voice_client: ClientFactory, backends: list[TTSBackend]
) -> None:
    port = free_port()  # offline: nothing answers where edge is
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", f"ws://127.0.0.1:{port}/edge/v1?x=1")
    client, http = await voice_client(tts=make(backends, "edge,tone"))
    events = await client.turn(CAPITAL)
    assert actions(events).index("backend") < actions(events).index("sentence")
    switch = next(e for e in events if e["action"] == "backend")
    assert switch["data"]["tts"] == "tone" and "cannot reach" in switch["data"]["reason"]
    assert "error" not in actions(events) and len(audio_of(events)) >= 2
    # Edge is cooling down: a new session is told tone speaks, and no switch follows.
    later = VoiceClient(await http.ws_connect("/ws"))
    ready = await later.next_event()
    assert ready["data"]["tts"] == "tone" and ready["data"]["audio"]["sample_rate"] == 24000
    assert "backend" not in actions(await later.turn(CAPITAL))


async def test_a_healthy_chain_says_edge_in_ready_and_sends_no_backend_event(
    edge_upstream: EdgeUpstream, aiohttp_client: Any, backends: list[TTSBackend]
) -> None:
    from voicechat.server.app import create_app

    http = await aiohttp_client(create_app(settings_for(), tts=make(backends, "edge,tone")))
    client = VoiceClient(await http.ws_connect("/ws"))
    ready = (await client.next_event())["data"]
    assert ready["tts"] == "edge" and "tone-high" in ready["voices"]
    # Whose voice each voice is, in the chain's order (the page shows the speaker's voices).
    assert list(ready["backends"]) == ["edge", "tone"]
    assert ready["backends"]["tone"] == ToneTTS().voices()
    assert set(ready["voices"]) == {v for vs in ready["backends"].values() for v in vs}
    assert "backend" not in actions(await client.turn(CAPITAL))
    health = await (await http.get("/healthz")).json()
    assert health["tts"] == "edge,tone"


async def test_a_voice_of_the_chain_is_spoken_by_its_backend(
    edge_upstream: EdgeUpstream, voice_client: ClientFactory, backends: list[TTSBackend]
) -> None:
    client, _ = await voice_client(tts=make(backends, "edge,tone"))
    events = await client.turn(CAPITAL, voice="tone-high")
    switch = next(e for e in events if e["action"] == "backend")
    assert switch["data"] == {"tts": "tone", "reason": "voice 'tone-high' is tone's"}
    tone = ToneTTS(sample_rate=24000)
    sentences = [e["data"] for e in events if e["action"] == "sentence"]
    assert mp3_of(events) == b"".join(tone.render(s, "tone-high") for s in sentences)
    assert edge_upstream.handshakes == 0


async def test_an_unknown_voice_is_a_bad_request_before_anything_is_synthesized(
    edge_upstream: EdgeUpstream, voice_client: ClientFactory, backends: list[TTSBackend]
) -> None:
    client, _ = await voice_client(tts=make(backends, "edge,tone"))
    await client.start(CAPITAL, voice="en-US-NobodyNeural")
    error = await client.next_event()
    assert error["action"] == "error" and error["data"]["code"] == "bad_request"
    assert edge_upstream.handshakes == 0


async def test_voices_lists_every_backend_of_the_chain_with_the_services_list(
    edge_upstream: EdgeUpstream, voice_client: ClientFactory, backends: list[TTSBackend]
) -> None:
    client, http = await voice_client(tts=make(backends, "edge,tone"))
    listing = await (await http.get("/voices")).json()
    assert listing["tts"] == "edge,tone"
    by_name = {v["name"]: v for v in listing["voices"]}
    assert by_name["de-AT-JonasNeural"] == {
        "name": "de-AT-JonasNeural",
        "backend": "edge",
        "locale": "de-AT",
        "gender": "Male",
    }
    assert by_name["tone-high"]["backend"] == "tone"
    events = await client.turn(CAPITAL, voice="de-AT-JonasNeural")  # known now
    assert mp3_of(events) == edge_upstream.audio * 2
    assert "(de-AT, JonasNeural)" in edge_upstream.ssml[0]


async def test_voices_still_answers_when_the_service_list_is_unavailable(
    edge_upstream: EdgeUpstream, voice_client: ClientFactory, backends: list[TTSBackend]
) -> None:
    edge_upstream.voices_status = 503
    _, http = await voice_client(tts=make(backends, "edge"))
    response = await http.get("/voices")
    names = [v["name"] for v in (await response.json())["voices"]]
    assert response.status == 200 and "en-US-EmmaMultilingualNeural" in names


async def test_an_edge_service_gone_quiet_gives_tts_failed_and_the_session_goes_on(
    edge_upstream: EdgeUpstream, voice_client: ClientFactory, backends: list[TTSBackend]
) -> None:
    client, _ = await voice_client(tts=make(backends, "edge", tts_idle_timeout=0.2))
    edge_upstream.fault = "hang"
    events = await client.turn(CAPITAL)
    errors = [e["data"] for e in events if e["action"] == "error"]
    assert errors and all("sent nothing" in e["message"] for e in errors)
    edge_upstream.fault = None
    assert mp3_of(await client.turn(CAPITAL)) == edge_upstream.audio * 2


@pytest.mark.parametrize(("status", "fault"), [(500, None), (401, None), (None, "empty")])
async def test_a_failing_speech_endpoint_gives_tts_failed_and_the_session_goes_on(
    upstream: tuple[Upstream, str],
    voice_client: ClientFactory,
    backends: list[TTSBackend],
    status: int | None,
    fault: Any,
) -> None:
    state, url = upstream
    client, _ = await voice_client(tts=make(backends, "openai", openai_base_url=url))
    state.fail_status, state.speech_fault = status, fault
    events = await client.turn(CAPITAL)
    assert [e["data"]["code"] for e in events if e["action"] == "error"] == ["tts_failed"] * 2
    assert events[-1]["action"] == "done" and audio_of(events) == []
    state.fail_status, state.speech_fault = None, None
    assert mp3_of(await client.turn(CAPITAL)) == FrameAligner().feed(state.speech_mp3) * 2
