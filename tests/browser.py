"""Support for the browser tests: the real server on a loopback port in a thread of its own,
Debian's Chromium driven by Playwright, and a log of the page's WebSocket traffic."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import test_settings
from voicechat.llm.base import ChatMessage, LLMBackend
from voicechat.llm.replay import ReplayLLM, load_recordings
from voicechat.pipeline.audio import duration_s
from voicechat.server.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
# Written by `make browser` when it could not install Chromium (no root, no apt, no network).
INSTALL_FAILED = Path(__file__).resolve().parent.parent / ".venv" / ".chromium-install-failed"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
WAIT_S = 20.0
WAIT_MS = 20_000

T = TypeVar("T")


def require_chromium() -> None:
    """Skip only when Chromium is absent *and* its installation was tried and failed."""
    if CHROMIUM.exists():
        return
    if INSTALL_FAILED.exists():
        pytest.skip(
            f"{CHROMIUM} is missing and `make browser` could not install it: "
            f"{INSTALL_FAILED.read_text().strip()}"
        )
    pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium) first")


class EndlessReplayLLM:
    """The replay LLM at speed 0, except that the answers to the ``endless`` prompts never
    finish: after their recorded text the stream stays open until it is closed. The turn is
    then still live on the server while the page plays it, as with a real LLM streaming a long
    answer, so pause, stop and barge-in reach a live turn, whatever the machine's speed."""

    name = "replay"

    def __init__(self, *, endless: Sequence[str]) -> None:
        self._replay = ReplayLLM(load_recordings(test_settings().replay_dir), speed=0)
        self._endless = set(endless)

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        async with aclosing(self._replay.stream(messages)) as deltas:
            async for delta in deltas:
                yield delta
        if messages[-1]["content"] in self._endless:
            await asyncio.Event().wait()  # until the turn is stopped and this is closed

    async def aclose(self) -> None:
        return None


class ServerThread:
    """``create_app`` with the test settings (replay LLM at speed 0, tone TTS), served on
    ``127.0.0.1:port`` by an event loop in its own thread, so the sync Playwright API can
    drive the browser from the test's thread. ``stop()`` shuts it down like a real server."""

    def __init__(self, port: int, *, llm: LLMBackend | None = None, **settings: Any) -> None:
        self.port = port
        self.llm = llm
        self.url = f"http://127.0.0.1:{port}/"
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._sockets: list[asyncio.Transport] = []  # the transports of /ws connections

    def start(self) -> ServerThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(WAIT_S)
        return self

    async def _serve(self) -> None:
        app = create_app(test_settings(**self._settings), llm=self.llm)
        app.on_response_prepare.append(self._track_socket)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _track_socket(self, request: web.Request, response: web.StreamResponse) -> None:
        if isinstance(response, web.WebSocketResponse) and request.transport is not None:
            self._sockets.append(request.transport)  # type: ignore[arg-type]

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's event loop (its objects belong to that thread)."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(WAIT_S)

    def cut_connections(self) -> int:
        """Drop every open WebSocket the way a network does: the server's side of the TCP
        connection is aborted, no close frame is sent. Returns how many were cut."""

        def cut() -> int:
            live = [t for t in self._sockets if not t.is_closing()]
            for transport in live:
                transport.abort()
            return len(live)

        return self.call(cut)

    def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            asyncio.run_coroutine_threadsafe(runner.cleanup(), self._loop).result(WAIT_S)
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(WAIT_S)
        if not self._loop.is_closed():
            self._loop.close()


class Relay:
    """Routes the page's WebSocket through Playwright to the real server (everything is passed
    on as is), so that a test can hand the page a frame the server would never send."""

    def __init__(self) -> None:
        self._page_side: Any = None

    def __call__(self, route: Any) -> None:
        route.connect_to_server()
        self._page_side = route

    def inject(self, message: dict[str, Any]) -> None:
        assert self._page_side is not None, "the page has not connected"
        self._page_side.send(json.dumps(message))


class WireLog:
    """Every JSON frame the page sent and received on its WebSockets, in order; ``both``
    holds the two directions in one order, each frame as ``("sent" | "received", message)``."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.received: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.both: list[tuple[str, dict[str, Any]]] = []
        self.sockets = 0
        self.urls: list[str] = []  # of every WebSocket the page opened, in order
        page.on("websocket", self._attach)

    def _attach(self, ws: Any) -> None:
        self.sockets += 1
        self.urls.append(ws.url)
        ws.on("framereceived", lambda payload: self._log("received", self.received, payload))
        ws.on("framesent", lambda payload: self._log("sent", self.sent, payload))

    def _log(self, direction: str, into: list[dict[str, Any]], payload: str | bytes) -> None:
        message = json.loads(payload)
        into.append(message)
        self.both.append((direction, message))

    def wait_for(self, what: str, condition: Callable[[], Any], *, within: float = WAIT_S) -> Any:
        """Let Playwright deliver events until ``condition()`` is truthy, or fail."""
        deadline = time.monotonic() + within
        while not (result := condition()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {within} s waiting for {what}")
            self.page.wait_for_timeout(20)
        return result

    def of_turn(self, turn: str, action: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e.get("turn") == turn and e["action"] == action]


# -- fixtures (each test module using them defines its own `server` fixture) --------------

OpenPage = Callable[..., tuple[Page, WireLog]]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser: Browser, server: ServerThread) -> Iterator[OpenPage]:
    """``open_page(query, viewport=...)`` → a page connected to the server, and its wire log
    (``connected=False``: loaded, without waiting for the connection; ``relay``: a Playwright
    WebSocket route handler for its sockets). Any uncaught script error on the page fails the
    test."""
    contexts = []
    errors: list[str] = []

    def open_(
        query: str = "",
        *,
        relay: Callable[[Any], None] | None = None,
        connected: bool = True,
        **context: Any,
    ) -> tuple[Page, WireLog]:
        ctx = browser.new_context(**context)
        contexts.append(ctx)
        page = ctx.new_page()
        if relay is not None:  # every connection to /ws, whatever its query
            page.route_web_socket(re.compile(r"/ws(\?.*)?$"), relay)
        page.on("pageerror", lambda error: errors.append(str(error)))
        wire = WireLog(page)
        page.goto(server.url + query)
        if connected:
            page.wait_for_selector('#status[data-state="connected"]', timeout=WAIT_MS)
        return page, wire

    yield open_
    for ctx in contexts:
        ctx.close()
    assert errors == []


# -- reading the page ----------------------------------------------------------------

AUDIO_JS = """() => {
  const a = document.getElementById('audio');
  const ranges = (t) => Array.from({length: t.length}, (_, i) => [t.start(i), t.end(i)]);
  return {currentTime: a.currentTime, paused: a.paused, src: a.getAttribute('src'),
          readyState: a.readyState,
          buffered: ranges(a.buffered), played: ranges(a.played)};
}"""

SEAMS_JS = """async (sentences) => {
  const { base64ToBytes, concatBytes } = await import('/mp3.js');
  const heard = window.voicechat.player.scheduledSamples();
  const rate = window.voicechat.state().player.sampleRate;
  const whole = [];
  for (const frames of sentences) {  // each sentence decoded in one piece, for comparison
    const ctx = new OfflineAudioContext(1, 1, rate);
    const bytes = concatBytes(frames.map(base64ToBytes));
    whole.push((await ctx.decodeAudioData(bytes.buffer)).getChannelData(0));
  }
  const want = new Float32Array(whole.reduce((n, w) => n + w.length, 0));
  whole.reduce((at, w) => (want.set(w, at), at + w.length), 0);
  let diff = 0;
  for (let i = 0; i < Math.min(heard.length, want.length); i++) {
    diff = Math.max(diff, Math.abs(heard[i] - want[i]));
  }
  return { heard: heard.length, want: want.length, diff };
}"""


def ask(page: Any, prompt: str) -> str:
    page.fill("#prompt", prompt)
    page.press("#prompt", "Enter")  # Enter sends
    turn: str = page.evaluate("window.voicechat.state().turn.id")
    return turn


def state(page: Any) -> Any:
    return page.evaluate("window.voicechat.state()")


def until(page: Any, condition: str) -> None:
    """Wait until ``condition`` (JavaScript over ``s``, the page's state) holds."""
    page.wait_for_function(
        f"() => {{ const s = window.voicechat.state(); return Boolean({condition}); }}",
        timeout=WAIT_MS,
        polling=20,
    )


def hold(page: Any, ms: int) -> None:
    """Let ``ms`` of the page's own clock pass (to show that something did *not* change)."""
    mark = page.evaluate("performance.now()")
    page.wait_for_function(f"mark => performance.now() - mark >= {ms}", arg=mark)


def frames_seconds(wire: WireLog, turn: str) -> float:
    frames = wire.of_turn(turn, "audio")
    return duration_s(b"".join(base64.b64decode(f["data"]) for f in frames))


def played_reports(wire: WireLog, turn: str) -> list[int]:
    return [m["seq"] for m in wire.sent if m["action"] == "played" and m["turn"] == turn]
