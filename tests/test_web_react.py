"""The React hook (web/react/useVoiceChat.js) in its example app, bundled by esbuild and run in
Chromium against the real server (see test_web_page.py): it plays a turn, pauses, resumes,
stops, barges in and reconnects."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.browser import (
    WAIT_MS,
    EndlessReplayLLM,
    ServerThread,
    WireLog,
    frames_seconds,
    hold,
)
from tests.conftest import free_port
from tests.test_web_types import WEB, require_tools

ESBUILD = WEB / "node_modules" / ".bin" / "esbuild"
EXAMPLE = WEB / "react" / "example"
SAME = 1e-3
COUNT = "Count to five."  # five one-word sentences, 1.0 s of tone
LONG = "Tell me about the voicechat demo."  # its LLM stream never ends


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example app built as its docs say: esbuild bundles app.jsx (React, the hook, the
    client module) into example.js, beside index.html."""
    require_tools()
    out = tmp_path_factory.mktemp("example")
    subprocess.run(
        [
            str(ESBUILD),
            str(EXAMPLE / "app.jsx"),
            "--bundle",
            "--format=esm",
            "--jsx=automatic",
            "--define:process.env.NODE_ENV='production'",
            f"--outfile={out / 'example.js'}",
            "--log-level=warning",
        ],
        check=True,
        cwd=WEB,
        timeout=120,
    )
    shutil.copy(EXAMPLE / "index.html", out / "index.html")
    return out


@pytest.fixture
def server(example_dir: Path) -> Iterator[ServerThread]:
    llm = EndlessReplayLLM(endless=[LONG])
    server = ServerThread(free_port(), llm=llm, web_dir=example_dir).start()
    yield server
    server.stop()


@pytest.fixture
def app(browser: Browser, server: ServerThread) -> Iterator[tuple[Page, WireLog]]:
    ctx = browser.new_context()
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    wire = WireLog(page)
    page.goto(server.url)
    page.wait_for_selector('#status[data-state="connected"]', timeout=WAIT_MS)
    yield page, wire
    ctx.close()
    assert errors == []


def until(page: Page, condition: str) -> None:
    """Wait until ``condition`` (JavaScript over ``v``, the hook's value, and ``chat``) holds."""
    page.wait_for_function(
        f"() => {{ const v = window.example; const chat = v.chat; return Boolean({condition}); }}",
        timeout=WAIT_MS,
        polling=20,
    )


def look(page: Page, expression: str) -> Any:
    return page.evaluate(
        f"() => {{ const v = window.example; const chat = v.chat; return {expression}; }}"
    )


def ask(page: Page, prompt: str) -> str:
    page.fill("#prompt", prompt)
    page.click("#start")
    until(page, f"v.turn !== null && v.turn.prompt === {prompt!r}")
    turn: str = look(page, "v.turn.id")
    return turn


def test_the_example_plays_a_turn_to_the_end(app: tuple[Page, WireLog]) -> None:
    page, wire = app
    turn = ask(page, COUNT)
    until(page, "v.turn.state === 'done'")
    seconds = frames_seconds(wire, turn)
    assert look(page, "chat.player.position") == pytest.approx(seconds, abs=SAME)
    shown = page.eval_on_selector_all(f'[data-turn="{turn}"] .text', "els => els[0].textContent")
    assert shown == wire.of_turn(turn, "done")[0]["data"]["text"]
    assert page.text_content("#first-sound") == f"{look(page, 'v.firstSoundMs')} ms"
    sent = [m["seq"] for m in wire.sent if m["action"] == "played"]
    assert sent[-1] == wire.of_turn(turn, "audio")[-1]["seq"]


def test_the_example_pauses_resumes_and_stops(app: tuple[Page, WireLog]) -> None:
    page, wire = app
    turn = ask(page, LONG)
    until(page, "chat.player.position > 0.3 && v.turn.sentence !== null")
    page.click("#pause")
    assert look(page, "chat.player.paused")  # silent at once
    wire.wait_for("paused", lambda: wire.of_turn(turn, "paused"))
    held = look(page, "chat.player.position")
    hold(page, 300)
    assert look(page, "chat.player.position") == held and look(page, "v.paused")
    page.click("#resume")
    wire.wait_for("resumed", lambda: wire.of_turn(turn, "resumed"))
    until(page, f"chat.player.position > {held} + 0.2")
    page.click("#stop")
    until(page, "v.turn.state === 'stopped'")
    wire.wait_for("stopped", lambda: wire.of_turn(turn, "stopped"))
    assert look(page, "chat.player.position") == 0  # nothing of it plays any more
    assert page.get_attribute(f'[data-turn="{turn}"]', "data-state") == "stopped"


def test_the_example_barges_in_with_a_new_prompt(app: tuple[Page, WireLog]) -> None:
    page, wire = app
    first = ask(page, LONG)
    until(page, "chat.player.position > 0.3")
    second = ask(page, COUNT)
    until(page, "v.turn.state === 'done'")
    assert page.get_attribute(f'[data-turn="{first}"]', "data-state") == "stopped"
    assert look(page, "v.turns.map((t) => t.state)") == ["stopped", "done"]
    received = wire.received
    stopped_at = received.index(wire.of_turn(first, "stopped")[0])
    assert all(i > stopped_at for i, e in enumerate(received) if e.get("turn") == second)
    seconds = frames_seconds(wire, second)
    assert look(page, "chat.player.position") == pytest.approx(seconds, abs=SAME)


def test_the_example_reconnects_and_the_turn_plays_on(
    app: tuple[Page, WireLog], server: ServerThread
) -> None:
    page, wire = app
    turn = ask(page, LONG)
    until(page, "chat.player.position > 0.3")
    assert server.cut_connections() == 1  # no close frame: the server keeps the session
    until(page, "chat.session.resumes === 1 && v.status === 'connected'")
    at = look(page, "chat.player.position")
    until(page, f"chat.player.position > {at} + 0.3")
    assert look(page, "v.turn.state") == "speaking" and look(page, "v.turn.id") == turn
    readies = [m for m in wire.received if m["action"] == "ready"]
    assert [r["data"]["resumed"] for r in readies] == [False, True]
    assert readies[1]["data"]["turn"] == {"id": turn, "paused": False}
