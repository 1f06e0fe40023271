"""The voice page in a real browser: Debian's Chromium, headless, driven by Playwright, against
the real server on loopback (replay LLM at speed 0, tone TTS). Headless Chromium has no sound
card but runs a real media clock: `currentTime`, `played` and the AudioContext's time advance
as if it were playing out loud."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import (
    AUDIO_JS,
    SEAMS_JS,
    WAIT_MS,
    EndlessReplayLLM,
    OpenPage,
    Relay,
    ServerThread,
    ask,
    frames_seconds,
    hold,
    played_reports,
    state,
    until,
)
from tests.conftest import free_port

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SAME = 1e-3  # seconds: the media clock and the frame headers agree to the microsecond

COUNT = "Count to five."  # five one-word sentences, 1.0 s of tone
CAPITAL = "What is the capital of France?"  # two sentences, 2.8 s
LONG = "Tell me about the voicechat demo."  # many sentences, ~11 s; its LLM stream never ends


@pytest.fixture
def server() -> Iterator[ServerThread]:
    server = ServerThread(free_port(), llm=EndlessReplayLLM(endless=[LONG])).start()
    yield server
    server.stop()


def test_a_turn_plays_to_the_end_as_one_media_source_stream(open_page: OpenPage) -> None:
    page, wire = open_page()
    assert state(page)["player"]["kind"] == "mse"
    turn = ask(page, COUNT)
    until(page, "s.turn.state === 'done'")

    seconds = frames_seconds(wire, turn)
    assert wire.of_turn(turn, "done")[0]["data"]["audio_ms"] == round(seconds * 1000)
    audio = page.evaluate(AUDIO_JS)
    # One buffered range holding exactly the turn's frames, played from 0 through its end.
    assert audio["buffered"] == [[0, pytest.approx(seconds, abs=SAME)]]
    assert audio["played"] == [[0, pytest.approx(seconds, abs=SAME)]]
    assert audio["currentTime"] == pytest.approx(seconds, abs=SAME)
    # Every sentence was heard; the server was told, frame by frame, up to the last one.
    classes = page.eval_on_selector_all(".turn .sentence", "els => els.map(e => e.className)")
    assert classes == ["sentence heard"] * 5
    reports = played_reports(wire, turn)
    assert reports == sorted(set(reports))
    assert reports[-1] == wire.of_turn(turn, "audio")[-1]["seq"]
    assert page.text_content("#first-sound") == f"{state(page)['turn']['firstSoundMs']} ms"


def test_pause_holds_playback_still_and_resume_continues(open_page: OpenPage) -> None:
    page, wire = open_page()
    turn = ask(page, LONG)
    until(page, "s.turn.highlighted >= 1 && s.position > 0.5")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-mid-answer.png"))

    page.click("#pause")
    assert page.evaluate(AUDIO_JS)["paused"]  # silent at once, before the server answers
    wire.wait_for("paused", lambda: wire.of_turn(turn, "paused"))
    held = page.evaluate(AUDIO_JS)["currentTime"]
    hold(page, 500)
    assert page.evaluate(AUDIO_JS)["currentTime"] == held
    assert page.text_content("#pause") == "Resume"

    page.click("#pause")
    wire.wait_for("resumed", lambda: wire.of_turn(turn, "resumed"))
    until(page, f"s.position > {held} + 0.3")
    audio = page.evaluate(AUDIO_JS)
    assert not audio["paused"]
    assert audio["played"] == [[0, pytest.approx(audio["currentTime"], abs=0.1)]]  # no skip
    assert [m["action"] for m in wire.sent if m["action"] in ("pause", "resume")] == [
        "pause",
        "resume",
    ]


def test_stop_silences_at_once_and_drops_what_is_buffered(open_page: OpenPage) -> None:
    relay = Relay()
    page, wire = open_page(relay=relay)
    turn = ask(page, LONG)
    until(page, "s.position > 0.3 && s.buffered > s.position + 1")

    page.click("#stop")
    audio = page.evaluate(AUDIO_JS)
    assert audio["paused"] and audio["src"] is None and audio["readyState"] == 0
    assert audio["buffered"] == []
    assert state(page)["turn"]["state"] == "stopped"
    wire.wait_for("stopped", lambda: wire.of_turn(turn, "stopped"))
    relay.inject(wire.of_turn(turn, "audio")[-1])  # a late frame of the stopped turn
    until(page, "s.dropped === 1")
    hold(page, 300)
    audio = page.evaluate(AUDIO_JS)
    assert audio["paused"] and audio["buffered"] == [] and audio["currentTime"] == 0
    assert page.is_disabled("#pause") and page.is_disabled("#stop")
    assert {"action": "stop"} in wire.sent
    spoken = wire.of_turn(turn, "stopped")[0]["data"]["spoken"]
    assert spoken.startswith("Hello! This is voicechat")


def test_a_new_prompt_barges_in_and_only_the_new_turn_is_heard(open_page: OpenPage) -> None:
    relay = Relay()
    page, wire = open_page(relay=relay)
    first = ask(page, LONG)
    until(page, "s.position > 0.3")
    second = ask(page, COUNT)
    relay.inject(wire.of_turn(first, "audio")[-1])  # a late frame of the superseded turn
    assert state(page)["turn"]["id"] == second
    assert page.get_attribute(f'[data-turn="{first}"]', "data-state") == "stopped"
    until(page, "s.turn.state === 'done'")
    assert state(page)["dropped"] == 1

    received = wire.received
    stopped_at = received.index(wire.of_turn(first, "stopped")[0])
    assert all(i > stopped_at for i, e in enumerate(received) if e.get("turn") == second)
    seconds = frames_seconds(wire, second)
    audio = page.evaluate(AUDIO_JS)
    assert audio["buffered"] == [[0, pytest.approx(seconds, abs=SAME)]]  # nothing of `first`
    assert audio["played"] == [[0, pytest.approx(seconds, abs=SAME)]]


def test_the_page_reconnects_by_itself_after_the_server_restarts(
    open_page: OpenPage, server: ServerThread
) -> None:
    page, wire = open_page()
    server.stop()
    page.wait_for_selector('#status[data-state="reconnecting"]', timeout=WAIT_MS)
    assert "retrying in" in (page.text_content("#status") or "")
    restarted = ServerThread(server.port, llm=EndlessReplayLLM(endless=[LONG])).start()
    try:
        page.wait_for_selector('#status[data-state="connected"]', timeout=30_000)
        assert wire.sockets >= 2
        turn = ask(page, COUNT)
        until(page, "s.turn.state === 'done'")
        played = page.evaluate(AUDIO_JS)["played"]
        assert played == [[0, pytest.approx(frames_seconds(wire, turn), abs=SAME)]]
    finally:
        restarted.stop()


def test_reconnect_delays_grow_exponentially_with_full_jitter(open_page: OpenPage) -> None:
    page, _ = open_page()
    delays = page.evaluate(
        """async () => {
          const { backoffDelay } = await import('/connection.js');
          const top = [0, 1, 2, 3, 4, 5, 8].map((n) => backoffDelay(n, () => 1));
          const bottom = backoffDelay(3, () => 0);
          const spread = new Set(Array.from({length: 20}, () => backoffDelay(4))).size;
          return { top, bottom, spread };
        }"""
    )
    assert delays["top"] == [500, 1000, 2000, 4000, 8000, 15000, 15000]
    assert delays["bottom"] == 250
    assert delays["spread"] > 1


def test_the_same_turn_plays_gaplessly_on_the_web_audio_path(open_page: OpenPage) -> None:
    page, wire = open_page("?player=webaudio", viewport={"width": 390, "height": 740})
    turn = ask(page, CAPITAL)
    until(page, "s.turn.highlighted === 1 && s.position > 1.2")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-mid-answer-phone-webaudio.png"))
    until(page, "s.turn.state === 'done'")

    now = state(page)
    assert now["player"]["kind"] == "webaudio"
    assert now["player"]["contextState"] == "running"
    assert now["player"]["sampleRate"] == wire.received[0]["data"]["audio"]["sample_rate"]
    assert now["player"]["decodeErrors"] == 0
    seconds = frames_seconds(wire, turn)
    assert now["buffered"] == pytest.approx(seconds, abs=SAME)  # all of it was scheduled
    assert now["position"] == pytest.approx(seconds, abs=SAME)  # and played through
    assert page.evaluate(AUDIO_JS)["played"] == []  # the <audio> element was not used
    # The scheduled parts join into exactly what decoding each sentence whole gives: the
    # sentence cut while it was still arriving has no gap and no click at the cut.
    assert now["player"]["parts"] > len(wire.of_turn(turn, "sentence"))
    sentences: dict[int, list[str]] = {}
    for frame in wire.of_turn(turn, "audio"):
        sentences.setdefault(frame["sentence"], []).append(frame["data"])
    seams = page.evaluate(SEAMS_JS, [sentences[i] for i in sorted(sentences)])
    assert seams["heard"] == seams["want"]
    assert seams["diff"] < 1e-6
    assert played_reports(wire, turn)[-1] == wire.of_turn(turn, "audio")[-1]["seq"]


def test_web_audio_pause_holds_and_a_suspended_context_asks_for_a_tap(
    open_page: OpenPage,
) -> None:
    page, wire = open_page("?player=webaudio")
    turn = ask(page, LONG)
    until(page, "s.position > 0.3")
    page.click("#pause")  # suspends the AudioContext: the whole schedule holds still
    wire.wait_for("paused", lambda: wire.of_turn(turn, "paused"))
    held = state(page)["position"]
    hold(page, 300)
    now = state(page)
    assert now["position"] == held and now["player"]["contextState"] == "suspended"
    assert page.is_hidden("#unlock")  # paused by the user is not "audio is blocked"
    page.click("#pause")
    until(page, f"s.position > {held} + 0.2")

    # The launch flags let audio start without a gesture, so the suspension an iPhone or a
    # strict autoplay policy causes is made here by suspending the context behind the page.
    page.evaluate("window.voicechat.player.ctx.suspend()")
    page.wait_for_selector("#unlock", state="visible", timeout=WAIT_MS)
    assert page.text_content("#unlock") == "Tap to enable audio"
    resumed_at = state(page)["position"]
    page.click("#unlock")
    page.wait_for_selector("#unlock", state="hidden", timeout=WAIT_MS)
    until(page, f"s.position > {resumed_at} + 0.2")
    assert state(page)["player"]["contextState"] == "running"
