"""The listener's playback clock and pacing audio ahead of it."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

from tests.conftest import ClientFactory, ScriptedLLM, audio_of
from tests.test_guarantees import mp3_of
from voicechat.pipeline.audio import duration_ms, duration_s
from voicechat.pipeline.pacing import ListenerClock
from voicechat.tts.tone import ToneTTS


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_clock_runs_on_wall_time_from_the_first_frame() -> None:
    fake = FakeTime()
    clock = ListenerClock(lead=2.0, now=fake)
    assert clock.position() == 0.0 and clock.room_in() == 0.0
    clock.frame_sent(1.0)
    clock.frame_sent(1.0)
    clock.frame_sent(1.0)
    fake.now += 0.5
    assert clock.position() == pytest.approx(0.5)
    assert clock.room_in() == pytest.approx(0.5)  # 3 s sent, 0.5 s heard, lead 2 s
    fake.now += 10
    assert clock.position() == pytest.approx(3.0)  # never beyond what was sent


def test_the_clock_stands_still_while_paused() -> None:
    fake = FakeTime()
    clock = ListenerClock(lead=1.0, now=fake)
    clock.frame_sent(5.0)
    fake.now += 1.0
    clock.pause()
    fake.now += 30.0
    assert clock.position() == pytest.approx(1.0)
    clock.resume()
    fake.now += 0.5
    assert clock.position() == pytest.approx(1.5)


def test_played_reports_move_the_clock_to_what_the_listener_heard() -> None:
    fake = FakeTime()
    clock = ListenerClock(lead=1.0, now=fake)
    for _ in range(4):
        clock.frame_sent(0.5)
    fake.now += 1.5  # wall time says 1.5 s ...
    clock.played(0)  # ... but the listener has only played the first frame (0.5 s)
    assert clock.position() == pytest.approx(0.5)
    fake.now += 0.25
    assert clock.position() == pytest.approx(0.75)
    clock.played(3)
    assert clock.position() == pytest.approx(2.0)
    clock.played(99)  # a frame never sent is ignored
    assert clock.position() == pytest.approx(2.0)


def test_a_lead_of_zero_turns_pacing_off() -> None:
    clock = ListenerClock(lead=0.0, now=FakeTime())
    clock.frame_sent(60.0)
    assert clock.room_in() == 0.0


async def test_wait_for_room_returns_when_a_played_report_arrives() -> None:
    clock = ListenerClock(lead=0.5)
    for _ in range(10):
        clock.frame_sent(1.0)  # 10 s ahead: without a report this would wait 9.5 s
    waiter = asyncio.create_task(clock.wait_for_room())
    await asyncio.sleep(0)
    assert not waiter.done()
    clock.played(9)
    await asyncio.wait_for(waiter, 5)


# Through the server -----------------------------------------------------------------------


async def test_audio_is_never_sent_more_than_the_lead_ahead_of_wall_time(
    voice_client: ClientFactory,
) -> None:
    lead = 0.3
    sentences = ["This sentence is long enough to take a while. "] * 3
    client, _ = await voice_client(
        llm=ScriptedLLM(sentences), tts=ToneTTS(piece_ms=2000), lead=lead, frame_ms=200
    )
    started_at = time.monotonic()
    await client.start("go")
    sent = 0.0
    checked = 0
    while True:
        event = await client.next_event()
        now = time.monotonic()
        if event["action"] == "done":
            break
        if event["action"] != "audio":
            continue
        # The server sent this frame only if the audio before it was within `lead` of its
        # clock, which started after our start and before `now`: a slow machine only makes
        # this easier to meet, and an unpaced server fails it by seconds.
        assert sent <= (now - started_at) + lead
        sent += duration_s(base64.b64decode(event["data"]))
        checked += 1
    assert checked >= 12  # frames of at most 200 ms over ~4 s of audio
    assert sent > 3.0


async def test_long_audio_is_cut_into_frames_at_most_frame_ms_long(
    voice_client: ClientFactory,
) -> None:
    client, _ = await voice_client(
        llm=ScriptedLLM(["A single rather long sentence to speak."]),
        tts=ToneTTS(piece_ms=60_000),
        frame_ms=300,
    )
    frames = audio_of(await client.turn("go"))
    assert len(frames) >= 4
    assert all(duration_ms(base64.b64decode(f["data"])) <= 300 for f in frames)
    assert mp3_of(frames) == ToneTTS().render("A single rather long sentence to speak.")


async def test_stopped_reports_what_the_listener_heard(voice_client: ClientFactory) -> None:
    client, _ = await voice_client(
        llm=ScriptedLLM(["First sentence here. ", "Second sentence here. ", "Third one."]),
        tts=ToneTTS(),
        lead=0.2,
    )
    await client.start("go")
    await client.until("audio", lambda e: e["sentence"] == 0)
    await client.send("played", None)  # malformed on purpose: answered with an error
    assert (await client.until("error"))[-1]["data"]["code"] == "bad_request"
    await client.ws.send_json({"action": "played", "turn": "t1", "seq": 0})
    await client.send("stop")
    stopped = (await client.until("stopped"))[-1]
    assert stopped["data"]["heard"].startswith("First sentence here.")
    assert "Third" not in stopped["data"]["heard"]
    assert stopped["data"]["spoken"].startswith(stopped["data"]["heard"])
