"""web/voicechat.js used by a page of its own (not the voice page): a bare page that imports a
copy of the published files as any app would, in Chromium against the real server (see
test_web_page.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.browser import WAIT_MS, EndlessReplayLLM, ServerThread, WireLog
from tests.conftest import free_port

WEB = Path(__file__).resolve().parent.parent / "web"

COUNT = "Count to five."  # five one-word sentences, 1.0 s of tone
LONG = "Tell me about the voicechat demo."  # its LLM stream never ends

# Every event the module emits but `change`, recorded as [name, detail-without-bytes].
BARE_PAGE = """<!doctype html><meta charset="utf-8"><title>bare</title>
<script type="module" src="bare.js"></script>"""
BARE_SCRIPT = """
  import { VoiceChat } from "/voicechat.js";
  const chat = new VoiceChat();
  window.chat = chat;
  window.events = [];
  for (const name of ["ready", "status", "text", "sentence", "audio", "played", "paused",
                      "resumed", "stopped", "done", "error", "backend"]) {
    chat.on(name, (detail) => {
      const { bytes, ...rest } = detail;
      window.events.push([name, rest]);
    });
  }
  chat.connect().then((server) => { window.readyInfo = server; });
"""


def package_files() -> list[str]:
    """The files web/package.json publishes (the module and what it imports)."""
    files: list[str] = json.loads((WEB / "package.json").read_text())["files"]
    return files


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    """The server, serving a copy of the published files and the bare page (a page served
    from elsewhere may not open a socket to loopback in Chromium: Local Network Access)."""
    for name in package_files():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(WEB / name, tmp_path / name)
    (tmp_path / "bare.html").write_text(BARE_PAGE)
    (tmp_path / "bare.js").write_text(BARE_SCRIPT)
    (tmp_path / "index.html").write_text("not the voice page")
    llm = EndlessReplayLLM(endless=[LONG])
    server = ServerThread(free_port(), llm=llm, web_dir=tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def bare_page(browser: Browser, server: ServerThread) -> Iterator[tuple[Page, WireLog]]:
    ctx = browser.new_context()
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    wire = WireLog(page)
    page.goto(server.url + "bare.html")
    page.wait_for_function("() => window.readyInfo !== undefined", timeout=WAIT_MS)
    yield page, wire
    ctx.close()
    assert errors == []


def events(page: Page, *names: str) -> list[list[Any]]:
    recorded: list[list[Any]] = page.evaluate("window.events")
    return [e for e in recorded if not names or e[0] in names]


SERVER_ACTIONS = ("ready", "text", "sentence", "audio", "paused", "resumed", "stopped", "done")


def key(action: str, turn: str | None, detail: dict[str, Any]) -> tuple[Any, ...]:
    return (action, turn, detail.get("index"), detail.get("seq"))


def test_the_modules_events_arrive_in_protocol_order(bare_page: tuple[Page, WireLog]) -> None:
    page, wire = bare_page
    turn = page.evaluate(f"window.chat.start({COUNT!r})")
    page.wait_for_function("() => window.chat.turn.state === 'done'", timeout=WAIT_MS, polling=20)
    emitted = [
        key(name, detail.get("turn"), detail) for name, detail in events(page, *SERVER_ACTIONS)
    ]
    received = [
        key(m["action"], m.get("turn"), m) for m in wire.received if m["action"] in SERVER_ACTIONS
    ]
    assert emitted == received  # one event per message, in the order they came
    assert [e[0] for e in emitted].count("audio") == len(wire.of_turn(turn, "audio")) > 0
    assert emitted[0][0] == "ready" and emitted[-1] == ("done", turn, None, None)
    # The text events carry the text so far; `done` the whole of it.
    texts = [d for n, d in events(page, "text")]
    done = [d for n, d in events(page, "done")][0]
    assert texts[-1]["text"] == done["text"] == wire.of_turn(turn, "done")[0]["data"]["text"]
    # `played` reports went to the server as events too, the last one at the turn's end.
    played = [d for n, d in events(page, "played")]
    sent = [m["seq"] for m in wire.sent if m["action"] == "played"]
    assert [d["seq"] for d in played] == sent and played[-1]["ended"] is True
    assert sent[-1] == wire.of_turn(turn, "audio")[-1]["seq"]
    assert page.evaluate("window.chat.turn.firstSoundMs") is not None


def test_the_module_pauses_resumes_and_stops_a_turn(bare_page: tuple[Page, WireLog]) -> None:
    page, wire = bare_page
    turn = page.evaluate(f"window.chat.start({LONG!r})")
    page.wait_for_function("() => window.chat.player.position > 0.3", timeout=WAIT_MS, polling=20)
    page.evaluate("window.chat.pause()")
    assert page.evaluate("window.chat.player.paused")  # silent at once
    wire.wait_for("paused", lambda: ["paused", {"turn": turn}] in events(page, "paused"))
    page.evaluate("window.chat.resume()")
    wire.wait_for("resumed", lambda: ["resumed", {"turn": turn}] in events(page, "resumed"))
    page.evaluate("window.chat.stop()")
    assert page.evaluate("window.chat.turn.state") == "stopped"
    wire.wait_for("stopped", lambda: events(page, "stopped"))
    [[_, stopped]] = events(page, "stopped")
    assert stopped["turn"] == turn and stopped["spoken"].startswith("Hello! This is voicechat")
    assert [m["action"] for m in wire.sent if m["action"] != "played"] == [
        "start",
        "pause",
        "resume",
        "stop",
    ]


def test_close_ends_the_session_without_a_reconnect(bare_page: tuple[Page, WireLog]) -> None:
    page, wire = bare_page
    page.evaluate("window.chat.close()")
    page.wait_for_function("() => window.chat.status.state === 'closed'", timeout=WAIT_MS)
    page.wait_for_timeout(1500)  # longer than the first backoff: no attempt follows
    assert wire.sockets == 1
    assert page.evaluate("window.chat.start('hello?')") is None  # not connected
