"""The six guarantees of the protocol, over a real WebSocket, plus the races around them."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from tests.conftest import (
    ClientFactory,
    ScriptedLLM,
    TrackingTTS,
    VoiceClient,
    audio_of,
    eventually,
)
from voicechat.pipeline.audio import duration_ms
from voicechat.server.keys import SESSIONS
from voicechat.tts.tone import ToneTTS

SENTENCES = ["One is first. ", "Two comes next. ", "Three is here. ", "Four is last."]


def mp3_of(events: list[dict[str, Any]]) -> bytes:
    return b"".join(base64.b64decode(e["data"]) for e in audio_of(events))


def assert_ordered(events: list[dict[str, Any]]) -> None:
    frames = audio_of(events)
    assert [f["seq"] for f in frames] == list(range(len(frames)))
    sentences = [f["sentence"] for f in frames]
    assert sentences == sorted(sentences)


# 1. Order ------------------------------------------------------------------------------


async def test_audio_comes_in_sentence_order_when_later_sentences_synthesize_faster(
    voice_client: ClientFactory,
) -> None:
    # The first sentence is the slowest to synthesize, the last the fastest.
    tts = TrackingTTS(ToneTTS(piece_ms=100), latency_by_index=[0.3, 0.2, 0.1, 0.0])
    client, _ = await voice_client(llm=ScriptedLLM(SENTENCES), tts=tts, lookahead=3)
    events = await client.turn("go")
    assert_ordered(events)
    assert {f["sentence"] for f in audio_of(events)} == {0, 1, 2, 3}
    assert len(audio_of(events)) > 4  # several frames per sentence, seq across sentences


async def test_sentence_event_comes_right_before_its_first_audio_frame(
    voice_client: ClientFactory,
) -> None:
    client, _ = await voice_client(llm=ScriptedLLM(SENTENCES))
    events = await client.turn("go")
    speech = [e for e in events if e["action"] in ("sentence", "audio")]
    for position, event in enumerate(speech):
        if event["action"] == "sentence":
            following = speech[position + 1]
            assert following["action"] == "audio" and following["sentence"] == event["index"]
    assert [e["data"] for e in speech if e["action"] == "sentence"] == [
        s.strip() for s in SENTENCES
    ]


async def test_done_reports_text_sentences_and_audio_length(voice_client: ClientFactory) -> None:
    client, _ = await voice_client(llm=ScriptedLLM(SENTENCES))
    events = await client.turn("go")
    done = events[-1]
    assert done["data"]["text"] == "".join(SENTENCES)
    assert done["data"]["sentences"] == 4
    expected_ms = sum(len(s.strip()) * 30 for s in SENTENCES)  # tone: 30 ms per character
    assert done["data"]["audio_ms"] == duration_ms(mp3_of(events))
    # MP3 encoding pads each sentence by well under 100 ms
    assert expected_ms <= done["data"]["audio_ms"] <= expected_ms + 4 * 100


# 2. Pause loses nothing -------------------------------------------------------------------


async def test_pause_holds_audio_until_resume_and_the_audio_is_byte_identical(
    voice_client: ClientFactory,
) -> None:
    reference_client, _ = await voice_client(llm=ScriptedLLM(SENTENCES))
    reference = mp3_of(await reference_client.turn("go"))

    gate = asyncio.Event()
    tts = TrackingTTS(ToneTTS(piece_ms=200), gate_after_first_piece=gate)
    client, _ = await voice_client(llm=ScriptedLLM(SENTENCES), tts=tts, lookahead=2)
    await client.start("go")
    before = await client.until("audio")
    await client.send("pause")
    held = await client.until("paused")
    gate.set()  # the rest of sentence 0 is synthesized now, while paused
    # While paused, generation runs ahead into the bounded buffer: wait until the look-ahead
    # limit is reached (3 synthesis calls: the sentence being sent plus 2 ahead).
    await eventually(lambda: tts.started == 3)
    await client.send("pause")  # a second pause is acknowledged again, nothing else arrives
    idle = await client.until("paused")
    assert [e["action"] for e in idle] == ["paused"]
    assert tts.started == 3  # bounded: nothing beyond the look-ahead while paused
    await client.send("resume")
    after = await client.until("done")
    assert after[0]["action"] == "resumed"
    assert_ordered(before + held + after)
    assert mp3_of(before + held + after) == reference


# 3. Stop is final and clean ------------------------------------------------------------


async def stop_and_check_clean(
    client: VoiceClient, llm: ScriptedLLM, tts: TrackingTTS, baseline: int
) -> list[dict[str, Any]]:
    await client.send("stop")
    received = await client.until("stopped")
    # Nothing of the turn after `stopped`: a pause is acknowledged (as idle) right after it.
    await client.send("pause")
    after = await client.until("paused")
    assert [e["action"] for e in after] == ["paused"] and after[0]["turn"] is None
    assert llm.closed == llm.opened  # the LLM stream was closed
    assert tts.running == 0  # every synthesis was cancelled or finished
    await eventually(lambda: len(asyncio.all_tasks()) == baseline)
    return received


async def test_stop_sends_no_frame_after_stopped_and_cancels_everything(
    voice_client: ClientFactory,
) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=3)  # the LLM is still streaming when we stop
    tts = TrackingTTS(ToneTTS(piece_ms=100, piece_delay=0.05))
    client, _ = await voice_client(llm=llm, tts=tts)
    baseline = len(asyncio.all_tasks())
    await client.start("go")
    await client.until("audio")
    received = await stop_and_check_clean(client, llm, tts, baseline)
    stopped = received[-1]
    assert stopped["turn"] == "t1"
    assert stopped["data"]["spoken"].startswith("One is first.")


async def test_stop_before_the_first_audio_frame_sends_no_audio(
    voice_client: ClientFactory,
) -> None:
    llm = ScriptedLLM(SENTENCES)
    tts = TrackingTTS(ToneTTS(), latency_by_index=[5.0, 5.0, 5.0])
    client, _ = await voice_client(llm=llm, tts=tts)
    baseline = len(asyncio.all_tasks())
    await client.start("go")
    await eventually(lambda: tts.started >= 1)
    received = await stop_and_check_clean(client, llm, tts, baseline)
    assert audio_of(received) == []
    assert received[-1]["data"]["spoken"] == ""


async def test_stop_between_two_sentences(voice_client: ClientFactory) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=1)  # only the first sentence exists when we stop
    tts = TrackingTTS(ToneTTS())
    client, _ = await voice_client(llm=llm, tts=tts)
    baseline = len(asyncio.all_tasks())
    await client.start("go")
    await eventually(lambda: tts.ended == 1)  # sentence 0 is fully synthesized
    events = await client.until("audio", lambda e: e["sentence"] == 0)
    received = await stop_and_check_clean(client, llm, tts, baseline)
    assert {f["sentence"] for f in audio_of(events + received)} == {0}
    assert received[-1]["data"]["spoken"] == "One is first."


async def test_pause_then_stop(voice_client: ClientFactory) -> None:
    llm = ScriptedLLM(SENTENCES)
    tts = TrackingTTS(ToneTTS(piece_ms=100))
    client, _ = await voice_client(llm=llm, tts=tts)
    baseline = len(asyncio.all_tasks())
    await client.start("go")
    await client.until("audio")
    await client.send("pause")
    await client.until("paused")
    received = await stop_and_check_clean(client, llm, tts, baseline)
    assert audio_of(received) == []
    await client.send("resume")  # resume after stop: an idle ack, and still nothing of t1
    assert [e["action"] for e in await client.until("resumed")] == ["resumed"]


async def test_stop_twice_and_stop_with_nothing_playing_are_acknowledged(
    voice_client: ClientFactory,
) -> None:
    client, _ = await voice_client(llm=ScriptedLLM(SENTENCES))
    await client.send("stop")
    assert (await client.next_event()) == {
        "action": "stopped",
        "turn": None,
        "data": {"spoken": "", "heard": ""},
    }
    await client.turn("go")
    await client.send("stop")
    await client.send("stop")
    first, second = await client.next_event(), await client.next_event()
    assert first["action"] == second["action"] == "stopped"
    assert first["turn"] is None and second["turn"] is None  # the turn had already finished


# 4. Isolation ---------------------------------------------------------------------------


async def test_each_session_receives_only_its_own_frames(voice_client: ClientFactory) -> None:
    first, http = await voice_client()
    ws2 = await http.ws_connect("/ws")
    second = VoiceClient(ws2)
    assert (await second.next_event())["action"] == "ready"
    await first.start("What is the capital of France?")
    await second.start("Count to five.")
    first_events = await first.until("done")
    second_events = await second.until("done")
    assert first_events[-1]["data"]["text"].startswith("The capital of France is Paris.")
    assert second_events[-1]["data"]["text"] == "One. Two. Three. Four. Five."
    assert all("Paris" not in str(e.get("data")) for e in second_events)
    assert all("Five" not in str(e.get("data")) for e in first_events)
    assert_ordered(first_events)
    assert_ordered(second_events)


async def test_an_idle_session_receives_nothing_while_another_speaks(
    voice_client: ClientFactory,
) -> None:
    speaker, http = await voice_client()
    listener = VoiceClient(await http.ws_connect("/ws"))
    await listener.next_event()
    await speaker.turn("Count to five.")
    await listener.send("pause")
    assert [e["action"] for e in await listener.until("paused")] == ["paused"]


# 6. Disconnect ------------------------------------------------------------------------------


async def test_a_client_that_disconnects_mid_turn_leaves_nothing_running(
    voice_client: ClientFactory,
) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=2)
    tts = TrackingTTS(ToneTTS(piece_ms=100, piece_delay=0.05))
    client, http = await voice_client(llm=llm, tts=tts)
    baseline = len(asyncio.all_tasks())
    await client.start("go")
    await client.until("audio")
    await client.ws.close()
    app_sessions = http.server.app[SESSIONS]
    await eventually(lambda: not app_sessions)
    await eventually(lambda: llm.closed == llm.opened and tts.running == 0)
    # The session's handler task is gone too now, so the count drops below the baseline.
    await eventually(lambda: len(asyncio.all_tasks()) < baseline)


# Barge-in -------------------------------------------------------------------------------


async def test_start_barges_in_while_synthesis_is_running(voice_client: ClientFactory) -> None:
    llm = ScriptedLLM(SENTENCES)
    tts = TrackingTTS(ToneTTS(piece_ms=100, piece_delay=0.05), latency_by_index=[0.0, 5.0, 5.0])
    client, _ = await voice_client(llm=llm, tts=tts)
    await client.start("go", id="first")
    await client.until("audio")
    await eventually(lambda: tts.started >= 2)  # sentence 1 is synthesizing (slowly)
    await client.start("go", id="second")
    received = await client.until("done", lambda e: e["turn"] == "second")
    stopped_at = next(i for i, e in enumerate(received) if e["action"] == "stopped")
    assert received[stopped_at]["turn"] == "first"
    assert all(e.get("turn") != "second" for e in received[:stopped_at])
    assert all(e.get("turn") != "first" for e in received[stopped_at + 1 :])
    assert_ordered([e for e in received if e.get("turn") == "second"])
    assert llm.closed == llm.opened == 2


@pytest.mark.parametrize("starts", [5])
async def test_a_burst_of_starts_leaves_only_the_last_turn_speaking(
    voice_client: ClientFactory, starts: int
) -> None:
    client, _ = await voice_client(llm=ScriptedLLM(SENTENCES))
    for n in range(starts):
        await client.start("go", id=f"burst{n}")
    received = await client.until("done", lambda e: e["turn"] == f"burst{starts - 1}")
    done_turns = [e["turn"] for e in received if e["action"] == "done"]
    assert done_turns == [f"burst{starts - 1}"]
