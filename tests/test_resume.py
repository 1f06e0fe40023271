"""Resuming a session after a dropped connection."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from tests.conftest import (
    ClientFactory,
    ScriptedLLM,
    TrackingTTS,
    VoiceClient,
    audio_of,
    eventually,
)
from tests.test_guarantees import SENTENCES, assert_ordered, mp3_of
from voicechat.server.access import AccessLog
from voicechat.server.keys import PARKING, SESSIONS
from voicechat.server.resume import ReplayBuffer
from voicechat.tts.tone import ToneTTS


def drop(client: VoiceClient) -> None:
    """Cut the connection the way a network does: no close frame."""
    client.ws._response.connection.transport.abort()  # noqa: SLF001


async def reconnect(http: Any, ready: dict[str, Any], **query: Any) -> VoiceClient:
    params = {"resume": ready["data"]["resume"], **{k: str(v) for k, v in query.items()}}
    client = VoiceClient(await http.ws_connect("/ws", params=params))
    return client


async def test_a_resumed_session_continues_after_the_last_frame_seen(
    voice_client: ClientFactory,
) -> None:
    reference_client, _ = await voice_client(llm=ScriptedLLM(SENTENCES))
    reference = mp3_of(await reference_client.turn("go"))

    gate = asyncio.Event()
    tts = TrackingTTS(ToneTTS(piece_ms=100), gate_after_first_piece=gate)
    client, http = await voice_client(llm=ScriptedLLM(SENTENCES), tts=tts)
    ready = client.events[0]
    await client.start("go")
    before = await client.until("audio")
    drop(client)
    parking = http.server.app[PARKING]
    await eventually(lambda: len(parking) == 1)
    gate.set()  # the turn goes on producing while nobody is connected
    again = await reconnect(http, ready, turn="t1", seq=before[-1]["seq"])
    hello = await again.next_event()
    assert hello["action"] == "ready" and hello["data"]["resumed"] is True
    assert hello["data"]["session"] == ready["data"]["session"]
    assert hello["data"]["turn"] == {"id": "t1", "paused": False}
    after = await again.until("done")
    assert_ordered(before + after)  # seq rises by exactly 1 across the reconnect: no gap
    assert mp3_of(before + after) == reference  # and no duplicate


async def test_a_client_that_saw_no_audio_gets_the_whole_turn(voice_client: ClientFactory) -> None:
    gate = asyncio.Event()
    tts = TrackingTTS(ToneTTS(), latency_by_index=[0.0])
    llm = ScriptedLLM(SENTENCES, hold_after=1)
    llm.release = gate
    client, http = await voice_client(llm=llm, tts=tts)
    ready = client.events[0]
    await client.start("go")
    await client.until("audio")
    drop(client)
    await eventually(lambda: len(http.server.app[PARKING]) == 1)
    gate.set()
    again = await reconnect(http, ready)  # no turn and seq: replay all of the current turn
    assert (await again.next_event())["data"]["resumed"] is True
    events = await again.until("done")
    assert_ordered(events)
    assert audio_of(events)[0]["seq"] == 0
    assert events[-1]["data"]["sentences"] == 4


async def test_an_unknown_token_gets_a_new_session(voice_client: ClientFactory) -> None:
    client, http = await voice_client()
    ready = client.events[0]
    other = VoiceClient(await http.ws_connect("/ws", params={"resume": "not-a-token"}))
    hello = await other.next_event()
    assert hello["data"]["resumed"] is False
    assert hello["data"]["session"] != ready["data"]["session"]


async def test_a_client_that_closes_normally_is_not_kept(voice_client: ClientFactory) -> None:
    client, http = await voice_client(llm=ScriptedLLM(SENTENCES, hold_after=2))
    await client.start("go")
    await client.until("audio")
    await client.ws.close()
    await eventually(lambda: not http.server.app[SESSIONS])
    assert len(http.server.app[PARKING]) == 0


async def test_a_dropped_session_not_resumed_in_time_is_closed_and_leaves_nothing_running(
    voice_client: ClientFactory,
) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=2)
    tts = TrackingTTS(ToneTTS(piece_ms=100))
    client, http = await voice_client(llm=llm, tts=tts, resume_window=0.2)
    baseline = len(asyncio.all_tasks())
    ready = client.events[0]
    await client.start("go")
    await client.until("audio")
    drop(client)
    parking = http.server.app[PARKING]
    await eventually(lambda: len(parking) == 1)
    await eventually(lambda: len(parking) == 0)
    await eventually(lambda: llm.closed == llm.opened and tts.running == 0)
    await eventually(lambda: len(asyncio.all_tasks()) < baseline)
    late = await reconnect(http, ready, turn="t1", seq=0)
    assert (await late.next_event())["data"]["resumed"] is False


async def test_without_a_resume_window_a_dropped_session_is_closed_at_once(
    voice_client: ClientFactory,
) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=2)
    client, http = await voice_client(llm=llm, resume_window=0)
    await client.start("go")
    await client.until("audio")
    drop(client)
    await eventually(lambda: not http.server.app[SESSIONS] and llm.closed == llm.opened)
    assert len(http.server.app[PARKING]) == 0


async def test_frames_missing_from_the_bounded_buffer_stop_the_turn_with_an_error(
    voice_client: ClientFactory,
) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=3)  # the turn cannot end: its last sentence waits
    client, http = await voice_client(llm=llm, tts=ToneTTS(piece_ms=100), replay_bytes=2000)
    ready = client.events[0]
    await client.start("go")
    await client.until("audio", lambda e: e["sentence"] == 2)  # far more than 2000 bytes sent
    drop(client)
    await eventually(lambda: len(http.server.app[PARKING]) == 1)
    again = await reconnect(http, ready, turn="t1", seq=0)
    assert (await again.next_event())["data"]["resumed"] is True
    events = await again.until("stopped")
    assert [e["data"]["code"] for e in events if e["action"] == "error"] == ["resume_incomplete"]
    assert events[-1]["turn"] == "t1"
    llm.release.set()
    assert (await again.turn("go"))[-1]["data"]["sentences"] == 4


def test_the_replay_buffer_is_bounded_and_knows_when_it_lost_frames() -> None:
    buffer = ReplayBuffer(max_bytes=30)
    buffer.add("t1", None, "sentence-0")
    for seq in range(3):
        buffer.add("t1", seq, f"audio-{seq}---")  # 10 bytes each
    assert buffer.after("t1", 1) == ["audio-2---"]
    assert buffer.after("t1", 2) == []
    assert buffer.after("t1", 0) == ["audio-1---", "audio-2---"]
    assert buffer.after("t1", -1) is None  # "sentence-0" was trimmed
    buffer.add("t2", 0, "new-turn")
    assert buffer.after("t1", 2) == ["new-turn"]  # a client behind by a whole turn
    assert buffer.after("t2", -1) == ["new-turn"]


async def test_a_turn_that_ended_while_disconnected_is_replayed_to_its_done(
    voice_client: ClientFactory,
) -> None:
    client, http = await voice_client(llm=ScriptedLLM(SENTENCES), tts=ToneTTS(piece_ms=100))
    ready = client.events[0]
    await client.start("go")
    first = await client.until("audio")
    drop(client)
    await eventually(lambda: len(http.server.app[PARKING]) == 1)
    again = await reconnect(http, ready, turn="t1", seq=first[-1]["seq"])
    assert (await again.next_event())["data"]["resumed"] is True
    events = await again.until("done")
    assert_ordered(first + events)
    assert events[-1]["data"]["sentences"] == 4


def test_the_access_log_masks_the_resume_token_like_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    request = make_mocked_request("GET", "/ws?token=s3cret&resume=R3sume&turn=t1&seq=4")
    AccessLog(logging.getLogger("aiohttp.access"), "").log(request, web.Response(), 0.25)
    [line] = [record.getMessage() for record in caplog.records]
    assert '"GET /ws?token=***&resume=***&turn=t1&seq=4" 200' in line


# -- the pause state the client wants, in the resume address (`paused=1|0`) ------------------


async def reference_mp3(voice_client: ClientFactory) -> bytes:
    """The whole answer's audio, from an uninterrupted turn."""
    client, _ = await voice_client(llm=ScriptedLLM(SENTENCES))
    return mp3_of(await client.turn("go"))


async def cut_mid_turn(
    voice_client: ClientFactory, *, paused: bool = False
) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    """Turn t1 mid-answer (paused first when ``paused``): its first audio frame was received,
    then the connection was cut and the session parked while the rest of sentence 0 and the
    next two sentences were synthesized (look-ahead 2): frames are waiting to be sent.
    Returns the test client, the first `ready` and the events received."""
    gate = asyncio.Event()
    tts = TrackingTTS(ToneTTS(piece_ms=100), gate_after_first_piece=gate)
    client, http = await voice_client(llm=ScriptedLLM(SENTENCES), tts=tts, lookahead=2)
    await client.start("go")
    received = await client.until("audio")
    if paused:
        await client.send("pause")
        received += await client.until("paused")
    drop(client)
    await eventually(lambda: len(http.server.app[PARKING]) == 1)
    gate.set()
    await eventually(lambda: tts.started == 3)  # as far ahead as the turn may run
    return http, client.events[0], received


def speech(events: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """The `sentence` and `audio` frames among ``events``, as (action, index or seq)."""
    return [
        (e["action"], e["index"] if e["action"] == "sentence" else e["seq"])
        for e in events
        if e["action"] in ("sentence", "audio")
    ]


async def test_paused_1_in_the_resume_address_pauses_the_turn_before_anything_new_is_sent(
    voice_client: ClientFactory,
) -> None:
    reference = await reference_mp3(voice_client)
    http, ready, _ = await cut_mid_turn(voice_client)
    # The client lost the turn's first frame on the way (seq -1): the frames written before
    # the cut are replayed as they were sent, pause or not; nothing new comes after them.
    again = await reconnect(http, ready, turn="t1", seq=-1, paused=1)
    hello = await again.next_event()
    assert hello["data"]["resumed"] is True
    assert hello["data"]["turn"] == {"id": "t1", "paused": True}  # the acknowledgement
    await again.send("resume")
    held = await again.until("resumed")
    assert speech(held) == [("sentence", 0), ("audio", 0)]
    assert "paused" not in [e["action"] for e in held]
    after = await again.until("done")
    assert_ordered(held + after)
    assert mp3_of(held + after) == reference  # every frame once


async def test_paused_0_in_the_resume_address_resumes_a_turn_paused_before_the_cut(
    voice_client: ClientFactory,
) -> None:
    reference = await reference_mp3(voice_client)
    http, ready, before = await cut_mid_turn(voice_client, paused=True)
    again = await reconnect(http, ready, turn="t1", seq=audio_of(before)[-1]["seq"], paused=0)
    hello = await again.next_event()
    assert hello["data"]["turn"] == {"id": "t1", "paused": False}
    after = await again.until("done")  # without a `resume` from the client
    assert "resumed" not in [e["action"] for e in after]
    assert_ordered(before + after)
    assert mp3_of(before + after) == reference


async def test_paused_in_the_resume_address_of_another_turn_is_ignored(
    voice_client: ClientFactory,
) -> None:
    reference = await reference_mp3(voice_client)
    http, ready, _ = await cut_mid_turn(voice_client)
    again = await reconnect(http, ready, turn="t0", seq=3, paused=1)  # not the live turn
    hello = await again.next_event()
    assert hello["data"]["turn"] == {"id": "t1", "paused": False}
    events = await again.until("done")  # all of t1, from its start: the client had none of it
    assert_ordered(events)
    assert mp3_of(events) == reference


@pytest.mark.parametrize(
    ("value", "paused_before"), [("true", False), ("yes", False), ("false", True), ("", True)]
)
async def test_a_paused_value_other_than_1_or_0_is_ignored(
    voice_client: ClientFactory, value: str, paused_before: bool
) -> None:
    reference = await reference_mp3(voice_client)
    http, ready, before = await cut_mid_turn(voice_client, paused=paused_before)
    seq = audio_of(before)[-1]["seq"]
    again = await reconnect(http, ready, turn="t1", seq=seq, paused=value)
    hello = await again.next_event()
    assert hello["data"]["turn"] == {"id": "t1", "paused": paused_before}
    if paused_before:
        await again.send("resume")
        assert speech(await again.until("resumed")) == []
    after = await again.until("done")
    assert_ordered(before + after)
    assert mp3_of(before + after) == reference
