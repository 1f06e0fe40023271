"""`voicechat say` and `voicechat chat` as users run them, against a live server on loopback:
with pipes (plain lines, CI) and in a pseudo-terminal (live view, keys)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import termios
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests import conftest
from tests.conftest import CLEAN_ENV, EVENT_TIMEOUT, ScriptedLLM, eventually
from voicechat.client.connection import websocket_url
from voicechat.client.playback import playback_backends
from voicechat.llm.base import LLMBackend
from voicechat.server.app import create_app
from voicechat.server.keys import SESSIONS
from voicechat.server.session import Session
from voicechat.tts.tone import ToneTTS

pytestmark = pytest.mark.timeout(90)
SENTENCES = ["One is first. ", "Two comes next. ", "Three is here. ", "Four is last."]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CLI = [sys.executable, "-m", "voicechat"]

Serve = Callable[..., Awaitable[tuple[str, web.Application]]]


@pytest.fixture
def serve(aiohttp_client: Any) -> Serve:
    """``await serve(llm)`` → the WebSocket URL of a live server and its app; it counts the
    WebSocket connections it accepts in ``app["connections"]``."""

    async def start(llm: LLMBackend, *, tts: ToneTTS | None = None) -> tuple[str, web.Application]:
        app = create_app(conftest.test_settings(), llm=llm, tts=tts or ToneTTS())
        connections = {"ws": 0}

        @web.middleware
        async def count(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.path == "/ws":
                connections["ws"] += 1
            response: web.StreamResponse = await handler(request)
            return response

        app.middlewares.append(count)
        app[CONNECTIONS] = connections
        http: TestClient[Any, Any] = await aiohttp_client(app)
        return str(http.server.make_url("/ws")), app

    return start


CONNECTIONS = web.AppKey("connections", dict[str, int])


async def run_cli(*args: str, stdin: bytes = b"", cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=CLEAN_ENV,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def tone_mp3(sentences: list[str]) -> bytes:
    return b"".join(ToneTTS().render(s.strip()) for s in sentences)


async def test_say_without_a_tty_prints_plain_lines_and_writes_the_file(
    serve: Serve, tmp_path: Path
) -> None:
    url, _ = await serve(ScriptedLLM(SENTENCES))
    out = tmp_path / "answer.mp3"
    code, stdout, stderr = await run_cli("say", "--url", url, "--out", str(out), "go", cwd=tmp_path)
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert "connected: llm=scripted tts=tone (22050 Hz mp3)" in lines
    assert "> go" in lines
    assert [line for line in lines if line.startswith("  [")] == [
        f"  [{i}] {s.strip()}" for i, s in enumerate(SENTENCES)
    ]
    assert any(re.fullmatch(r"time to first audio: \d+ ms", line) for line in lines)
    assert "done: 4 sentences, " in stdout
    assert f"to {out}" in lines[-1]
    assert not ANSI.search(stdout)  # no terminal codes in a pipe
    assert out.read_bytes() == tone_mp3(SENTENCES)


@pytest.mark.skipif(playback_backends() is not None, reason="this machine can play sound")
async def test_say_without_an_audio_device_writes_the_default_file_and_says_so(
    serve: Serve, tmp_path: Path
) -> None:
    url, _ = await serve(ScriptedLLM(SENTENCES))
    code, stdout, stderr = await run_cli("say", "--url", url, "go", cwd=tmp_path)
    assert code == 0, stderr
    assert "no audio output device found" in stdout
    assert (tmp_path / "out" / "answer.mp3").read_bytes() == tone_mp3(SENTENCES)


async def test_say_plays_through_an_audio_device_and_reports_what_was_played(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[dict[str, Any]] = []
    receive_text = Session.receive_text

    async def recording(session: Session, raw: str) -> None:
        received.append(json.loads(raw))
        await receive_text(session, raw)

    monkeypatch.setattr(Session, "receive_text", recording)
    url, _ = await serve(ScriptedLLM(SENTENCES), tts=ToneTTS(piece_ms=100))  # 4 frames each
    args = ("say", "--url", url, "--audio-backend", "null", "go")
    code, stdout, stderr = await run_cli(*args, cwd=tmp_path)
    assert code == 0, stderr
    assert "playing through Null" in stdout
    assert "  [3] Four is last." in stdout and "done: 4 sentences" in stdout
    assert not (tmp_path / "out").exists()
    played = [m for m in received if m["action"] == "played"]
    assert played and {m["turn"] for m in played} == {"cli1"}
    seqs = [m["seq"] for m in played]
    assert seqs == sorted(set(seqs)) and seqs[0] >= 0


async def test_say_reports_a_refused_prompt(serve: Serve, tmp_path: Path) -> None:
    url, _ = await serve(ScriptedLLM(SENTENCES))
    code, _, stderr = await run_cli("say", "--url", url, "--voice", "nobody", "go", cwd=tmp_path)
    assert code == 1
    assert "unknown voice 'nobody'" in stderr


async def test_say_reports_an_unreachable_server(tmp_path: Path) -> None:
    code, _, stderr = await run_cli("say", "--url", "ws://127.0.0.1:9/ws", "go", cwd=tmp_path)
    assert code == 1
    assert "cannot connect to ws://127.0.0.1:9/ws" in stderr


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("ws://127.0.0.1:8765/ws", "ws://127.0.0.1:8765/ws"),
        ("http://127.0.0.1:8765", "ws://127.0.0.1:8765/ws"),
        ("https://voice.example/", "wss://voice.example/ws"),
        ("127.0.0.1:9000", "ws://127.0.0.1:9000/ws"),
        ("ws://host/custom/path", "ws://host/custom/path"),
    ],
)
def test_url_names_the_websocket(given: str, url: str) -> None:
    assert websocket_url(given) == url


async def test_chat_keeps_one_session_for_every_turn(serve: Serve, tmp_path: Path) -> None:
    llm = ScriptedLLM(SENTENCES)
    url, app = await serve(llm)
    args = ("chat", "--url", url, "--out-dir", str(tmp_path))
    code, stdout, stderr = await run_cli(*args, stdin=b"first\n\nsecond\n", cwd=tmp_path)
    assert code == 0, stderr
    assert [m[-1]["content"] for m in llm.seen] == ["first", "second"]
    assert app[CONNECTIONS]["ws"] == 1
    assert stdout.count("done: 4 sentences") == 2
    for turn in (1, 2):
        assert (tmp_path / f"chat-{turn}.mp3").read_bytes() == tone_mp3(SENTENCES)


# --- in a terminal -------------------------------------------------------------------------


class PtyProcess:
    """The CLI with a pseudo-terminal as its stdin, stdout and stderr."""

    def __init__(self, process: asyncio.subprocess.Process, master: int) -> None:
        self.process = process
        self.master = master
        self.output = ""
        self._changed = asyncio.Event()
        self.closed = False
        asyncio.get_running_loop().add_reader(master, self._read)

    @classmethod
    async def spawn(cls, *args: str, cwd: Path) -> PtyProcess:
        master, slave = os.openpty()
        env = {**CLEAN_ENV, "TERM": "xterm", "COLUMNS": "100", "LINES": "30"}
        process = await asyncio.create_subprocess_exec(
            *CLI, *args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd
        )
        os.close(slave)
        return cls(process, master)

    def _read(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed the terminal
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
            self.closed = True
        self.output += ANSI.sub("", data.decode(errors="replace"))
        self._changed.set()

    async def expect(self, text: str, *, after: int = 0) -> int:
        """Wait until ``text`` shows up past position ``after``; return where it ends."""
        async with asyncio.timeout(EVENT_TIMEOUT):
            while (found := self.output.find(text, after)) < 0:
                assert not self.closed, f"{text!r} never came:\n{self.output}"
                self._changed.clear()
                await self._changed.wait()
        return found + len(text)

    def press(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    async def exit_code(self) -> int:
        return await asyncio.wait_for(self.process.wait(), EVENT_TIMEOUT)

    def close(self) -> None:
        if not self.closed:
            asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)


def live_session(app: web.Application) -> Session:
    (session,) = app[SESSIONS]
    return session


def turn_paused(app: web.Application) -> bool:
    turn = live_session(app)._turn  # the server's own view of the turn
    return turn is not None and turn.paused


async def test_keys_pause_resume_and_stop_the_answer_in_a_terminal(
    serve: Serve, tmp_path: Path
) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=2)  # the answer is still being written
    url, app = await serve(llm)
    out = tmp_path / "answer.mp3"
    cli = await PtyProcess.spawn("say", "--url", url, "--out", str(out), "go", cwd=tmp_path)
    try:
        mark = await cli.expect("first audio")
        await cli.expect("▶ One is first.")  # the current sentence is marked
        cli.press(" ")
        mark = await cli.expect("[paused]", after=mark)
        await eventually(lambda: turn_paused(app))
        cli.press(" ")
        mark = await cli.expect("[speaking]", after=mark)
        await eventually(lambda: not turn_paused(app))
        cli.press("s")
        await cli.expect("stopped", after=mark)
        assert await cli.exit_code() == 0
    finally:
        cli.close()
    assert llm.closed == 1 and not llm.release.is_set()  # the stop closed the LLM stream
    assert out.read_bytes().startswith(ToneTTS().render("One is first."))


async def test_q_quits_a_chat_playing_aloud_and_restores_the_terminal(
    serve: Serve, tmp_path: Path
) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=2)
    url, app = await serve(llm)
    cli = await PtyProcess.spawn("chat", "--url", url, "--audio-backend", "null", cwd=tmp_path)
    try:
        await cli.expect("you> ")
        before = termios.tcgetattr(cli.master)
        cli.press("go\r")
        mark = await cli.expect("first audio")
        cli.press(" ")
        await cli.expect("[paused]", after=mark)
        await eventually(lambda: turn_paused(app))
        cli.press("q")
        assert await cli.exit_code() == 0
        assert termios.tcgetattr(cli.master) == before  # cooked mode and echo are back
    finally:
        cli.close()
    assert llm.closed == 1 and not llm.release.is_set()
    assert "playing through Null" in cli.output
    assert not (tmp_path / "out").exists()


async def test_say_text_prints_the_answer_and_writes_no_audio(serve: Serve, tmp_path: Path) -> None:
    url, _ = await serve(ScriptedLLM(SENTENCES))
    code, stdout, stderr = await run_cli("say", "--url", url, "--text", "go", cwd=tmp_path)
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert [line for line in lines if line.startswith("  [")] == [
        f"  [{i}] {s.strip()}" for i, s in enumerate(SENTENCES)
    ]
    assert "done: 4 sentences, text only" in lines
    assert not any("first audio" in line for line in lines)
    assert os.listdir(tmp_path) == []  # no file: nothing was synthesized
