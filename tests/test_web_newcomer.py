"""The voice page as a newcomer sees it, in Chromium (see test_web_page.py): it says plainly when
the answers are recordings and how to connect a real LLM, has a voice-off switch for text-only
turns, shows the voices of the backend that speaks and follows a fallback chain, and shows the
time to first sound once."""

from __future__ import annotations

from collections.abc import Iterator

import edge_tts
import pytest

from tests.browser import (
    AUDIO_JS,
    WAIT_MS,
    EndlessReplayLLM,
    OpenPage,
    Relay,
    ServerThread,
    ask,
    state,
    until,
)
from tests.conftest import free_port

COUNT = "Count to five."  # five one-word sentences, 1.0 s of tone
CAPITAL = "What is the capital of France?"  # two sentences
LONG = "Tell me about the voicechat demo."  # its LLM stream never ends


@pytest.fixture
def server(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerThread]:
    """The test server; ``indirect`` parametrization passes settings. Edge, when in its
    chain, is offline: nothing answers where it connects."""
    options = dict(getattr(request, "param", {}))
    url = f"ws://127.0.0.1:{free_port()}/edge/v1?x=1"
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", url)
    server = ServerThread(free_port(), llm=EndlessReplayLLM(endless=[LONG]), **options).start()
    yield server
    server.stop()


def test_voice_off_makes_a_text_only_turn_and_no_audio_frame_is_sent(
    open_page: OpenPage,
) -> None:
    page, wire = open_page()
    page.check("#voice-off")
    turn = ask(page, CAPITAL)
    until(page, "s.turn.state === 'done'")
    [start] = [m for m in wire.sent if m["action"] == "start"]
    assert start["data"]["audio"] is False and "voice" not in start["data"]
    assert wire.of_turn(turn, "audio") == []
    assert len(wire.of_turn(turn, "sentence")) == 2
    assert wire.of_turn(turn, "done")[0]["data"]["audio_ms"] == 0
    sentences = page.eval_on_selector_all(".turn .sentence", "els => els.map(e => e.textContent)")
    assert sentences == [m["data"] for m in wire.of_turn(turn, "sentence")]
    assert page.evaluate(AUDIO_JS)["played"] == []  # the player was never used
    meta = page.text_content(f'[data-turn="{turn}"] .meta') or ""
    assert "text only" in meta
    assert "text only" in (page.text_content("#speaking") or "")
    page.reload()  # the switch is remembered
    page.wait_for_selector('#status[data-state="connected"]', timeout=WAIT_MS)
    assert page.is_checked("#voice-off")


def test_in_replay_mode_the_page_says_so_and_how_to_connect_a_real_llm(
    open_page: OpenPage,
) -> None:
    page, _ = open_page()
    notice = page.text_content("#notice") or ""
    assert page.is_visible("#notice")
    assert notice.startswith("Replay mode: answers are recordings")
    assert "OPENAI_API_KEY" in notice and "--openai-base-url" in notice


def test_the_time_to_first_sound_is_shown_once(open_page: OpenPage) -> None:
    page, _ = open_page()
    turn = ask(page, COUNT)
    until(page, "s.turn.state === 'done'")
    shown = f"{state(page)['turn']['firstSoundMs']} ms"
    assert page.text_content("#first-sound") == shown
    assert shown not in (page.text_content(f'[data-turn="{turn}"]') or "")
    label = page.text_content(f'[data-turn="{turn}"] summary') or ""
    assert "raw text" in label


@pytest.mark.parametrize("server", [{"tts": "edge,tone"}], indirect=True)
def test_offline_the_picker_does_not_preselect_edges_voice_and_says_who_speaks(
    open_page: OpenPage,
) -> None:
    page, wire = open_page()
    # The server found edge unreachable as it started: tone speaks first.
    groups = page.eval_on_selector_all("#voice optgroup", "els => els.map(e => e.label)")
    assert groups == ["edge", "tone (speaking)"]
    edge_voice = page.evaluate("window.voicechat.chat.server.backends.edge[0]")
    page.evaluate(f"localStorage.setItem('voicechat.voice', {edge_voice!r})")  # chosen once
    page.reload()
    page.wait_for_selector('#status[data-state="connected"]', timeout=WAIT_MS)
    assert page.input_value("#voice") == ""
    assert page.text_content("#voice option:checked") == "default (tone)"
    assert page.text_content("#speaking") == "tone speaks in its default voice"
    # Chosen by hand, edge's voice is not promised: the page says tone will speak.
    page.select_option("#voice", edge_voice)
    speaking = page.text_content("#speaking") or ""
    assert speaking == (
        f"tone speaks in its default voice: {edge_voice} is edge's, and edge cannot speak now"
    )
    turn = ask(page, COUNT)
    until(page, "s.turn.state === 'done'")
    assert wire.of_turn(turn, "audio") and wire.of_turn(turn, "backend") == []


@pytest.mark.parametrize("server", [{"tts": "edge,tone"}], indirect=True)
def test_the_page_follows_the_backend_events_of_a_chain(open_page: OpenPage) -> None:
    relay = Relay()
    page, _ = open_page(relay=relay)
    turn = ask(page, LONG)
    # As a chain that moves back to edge and then fails over again would say it:
    relay.inject(
        {"action": "backend", "turn": turn, "data": {"tts": "edge", "reason": "first choice"}}
    )
    page.wait_for_function("() => window.voicechat.state().tts === 'edge'", timeout=WAIT_MS)
    groups = page.eval_on_selector_all("#voice optgroup", "els => els.map(e => e.label)")
    assert groups == ["edge (speaking)", "tone"]
    assert page.text_content("#speaking") == "edge speaks in its default voice"
    failed = "edge failed: cannot reach the edge service (connection failed)"
    relay.inject({"action": "backend", "turn": turn, "data": {"tts": "tone", "reason": failed}})
    page.wait_for_function("() => window.voicechat.state().tts === 'tone'", timeout=WAIT_MS)
    assert page.text_content("#speaking") == f"tone speaks in its default voice (tone: {failed})"
    assert page.text_content("#voice option:checked") == "default (tone)"
