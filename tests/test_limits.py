"""Per-connection limits: control rate, idle timeout, message size, heartbeat, vanishing peers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp import WSMsgType

from tests.conftest import ClientFactory, ScriptedLLM, eventually
from tests.conftest import test_settings as make_settings
from tests.rawws import RawWebSocket
from voicechat.server.app import create_app
from voicechat.server.keys import SESSIONS
from voicechat.server.limits import IDLE_CLOSE_CODE, TokenBucket
from voicechat.tts.tone import ToneTTS

SENTENCES = [f"Sentence number {n} is here. " for n in range(8)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.4  # 0.8 of a token
    assert not bucket.take()
    clock.now += 0.1
    assert bucket.take()
    assert not bucket.take()
    clock.now += 60  # refills up to the burst, not beyond
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_a_rate_of_zero_never_limits() -> None:
    bucket = TokenBucket(rate=0, burst=1, clock=FakeClock())
    assert all(bucket.take() for _ in range(1000))


async def test_control_messages_over_the_rate_get_rate_limited_and_the_connection_stays(
    voice_client: ClientFactory,
) -> None:
    client, _ = await voice_client(control_rate=0.001, control_burst=3)
    for _ in range(5):
        await client.send("pause")
    replies = [await client.next_event() for _ in range(5)]
    assert [r["action"] for r in replies] == ["paused"] * 3 + ["error"] * 2
    assert {r["data"]["code"] for r in replies[3:]} == {"rate_limited"}
    # not counted: playback reports, and messages that are answered with an error anyway
    await client.ws.send_str('{"action": "played", "turn": "t1", "seq": 0}')
    await client.ws.send_str("{bad")
    assert (await client.next_event())["data"]["code"] == "bad_json"
    await client.start("Count to five.")
    assert (await client.next_event())["data"]["code"] == "rate_limited"
    assert not client.ws.closed


async def test_an_idle_session_is_closed_with_4408(voice_client: ClientFactory) -> None:
    client, http = await voice_client(idle_timeout=0.2)
    assert (await client.turn("Count to five."))[-1]["action"] == "done"
    closing = await asyncio.wait_for(client.ws.receive(), 10)
    assert closing.type is WSMsgType.CLOSE
    assert closing.data == IDLE_CLOSE_CODE
    assert "idle" in closing.extra
    await eventually(lambda: not http.app[SESSIONS])


async def test_a_running_turn_is_not_idle_and_idle_time_counts_from_its_end(
    voice_client: ClientFactory,
) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=2)
    client, _ = await voice_client(llm=llm, idle_timeout=0.2)
    await client.start("go")
    await client.until("audio")
    # The wrong behaviour (idle counted from the last client message) closes at 0.2 s; the
    # idle timer is due before this sleep ends, so it cannot hide.
    await asyncio.sleep(0.6)
    llm.release.set()
    events = await client.until("done")
    assert len([e for e in events if e["action"] == "sentence"]) >= 6
    closing = await asyncio.wait_for(client.ws.receive(), 10)
    assert closing.data == IDLE_CLOSE_CODE


async def test_a_paused_turn_is_not_idle(voice_client: ClientFactory) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=2)
    client, _ = await voice_client(llm=llm, idle_timeout=0.2)
    await client.start("go")
    await client.until("audio")
    await client.send("pause")
    assert (await client.until("paused"))[-1]["turn"] == "t1"
    llm.release.set()  # the rest of the answer waits for the listener
    await asyncio.sleep(0.6)  # as above: a wrong close would be due before this ends
    await client.send("resume")
    assert (await client.until("done"))[-1]["turn"] == "t1"


async def test_a_frame_over_the_size_limit_closes_with_1009(voice_client: ClientFactory) -> None:
    client, http = await voice_client(max_message_bytes=1024)
    await client.ws.send_str('{"action": "start", "data": {"prompt": "' + "x" * 2000 + '"}}')
    closing = await asyncio.wait_for(client.ws.receive(), 10)
    assert closing.type is WSMsgType.CLOSE
    assert closing.data == 1009
    await eventually(lambda: not http.app[SESSIONS])
    # the server goes on serving
    again = await http.ws_connect("/ws")
    assert (await again.receive_json())["action"] == "ready"
    await again.close()


async def test_a_peer_that_stops_answering_pings_is_dropped(voice_client: ClientFactory) -> None:
    client, http = await voice_client(heartbeat=0.1)
    assert len(http.app[SESSIONS]) == 1
    # The client never reads again, so it never answers a ping: as if its network went away.
    await eventually(lambda: not http.app[SESSIONS])


async def test_a_client_vanishing_mid_turn_logs_no_error(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    llm = ScriptedLLM(SENTENCES, hold_after=3)
    # Not resumable, so the session is closed at once rather than parked (see test_resume.py).
    app = create_app(make_settings(resume_window=0), llm=llm, tts=ToneTTS())
    http = await aiohttp_client(app)
    raw = await RawWebSocket.connect(http.host, http.port)
    await raw.until("ready")
    await raw.send_json({"action": "start", "data": {"prompt": "go"}})
    await raw.until("audio")
    raw.abort()
    llm.release.set()  # the turn goes on writing into a connection that is gone
    await eventually(lambda: not app[SESSIONS])
    await eventually(lambda: llm.closed == llm.opened == 1)
    noisy = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not noisy, [r.getMessage() for r in noisy]
