"""The Python client API (`voicechat.connect`, `Chat.say`, typed events) against the real server
on loopback: turns spoken and text-only, pause/resume/stop from another task, a refused prompt,
and a turn that goes on after the connection drops."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import voicechat
from tests import conftest
from tests.conftest import CLEAN_ENV, EVENT_TIMEOUT, ScriptedLLM, TrackingTTS
from voicechat.client import (
    Audio,
    Chat,
    Done,
    Error,
    Event,
    Paused,
    Reconnected,
    Resumed,
    Sentence,
    Stopped,
    Text,
    TurnLost,
    connect,
)
from voicechat.llm.base import LLMBackend
from voicechat.server.app import create_app
from voicechat.tts.base import TTSBackend
from voicechat.tts.tone import ToneTTS

SENTENCES = ["One is first. ", "Two comes next. ", "Three is here. ", "Four is last."]
SOCKETS = web.AppKey("sockets", list[asyncio.Transport])

Serve = Callable[..., Awaitable[tuple[str, web.Application]]]


@pytest.fixture
def serve(aiohttp_client: Any) -> Serve:
    """``await serve(llm, **settings)`` → the /ws URL of a live server, and its app, which
    keeps the transports of its WebSockets in ``app[SOCKETS]`` (to cut them)."""

    async def start(
        llm: LLMBackend, *, tts: TTSBackend | None = None, **settings: Any
    ) -> tuple[str, web.Application]:
        app = create(llm, tts or ToneTTS(), **settings)
        http = await aiohttp_client(app)
        return str(http.server.make_url("/ws")), app

    return start


def create(llm: LLMBackend, tts: TTSBackend, **settings: Any) -> web.Application:
    app = create_app(conftest.test_settings(**settings), llm=llm, tts=tts)
    app[SOCKETS] = []

    async def track(request: web.Request, response: web.StreamResponse) -> None:
        if isinstance(response, web.WebSocketResponse) and request.transport is not None:
            app[SOCKETS].append(request.transport)  # type: ignore[arg-type]

    app.on_response_prepare.append(track)
    return app


async def collect(chat: Chat, prompt: str, **options: Any) -> list[Event]:
    async with asyncio.timeout(EVENT_TIMEOUT):
        return [event async for event in chat.say(prompt, **options)]


def tone_mp3(sentences: list[str]) -> bytes:
    return b"".join(ToneTTS().render(s.strip()) for s in sentences)


async def test_say_yields_the_turns_typed_events_in_order(serve: Serve) -> None:
    url, _ = await serve(ScriptedLLM(SENTENCES))
    async with voicechat.connect(url) as chat:
        assert chat.info.llm == "scripted" and chat.info.tts == "tone"
        assert chat.info.voices == tuple(ToneTTS().voices())
        events = await collect(chat, "go")
    assert isinstance(events[-1], Done) and events[-1].sentences == 4
    assert "".join(e.delta for e in events if isinstance(e, Text)) == "".join(SENTENCES)
    spoken = [e for e in events if isinstance(e, Sentence | Audio)]
    assert [e.text for e in spoken if isinstance(e, Sentence)] == [s.strip() for s in SENTENCES]
    for position, event in enumerate(spoken):  # each sentence right before its first frame
        if isinstance(event, Sentence):
            following = spoken[position + 1]
            assert isinstance(following, Audio) and following.sentence == event.index
    frames = [e for e in events if isinstance(e, Audio)]
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert b"".join(f.mp3 for f in frames) == tone_mp3(SENTENCES)
    assert voicechat.connect is connect


async def test_a_text_only_turn_yields_text_and_sentences_and_no_audio(serve: Serve) -> None:
    url, _ = await serve(ScriptedLLM(SENTENCES))
    async with connect(url) as chat:
        events = await collect(chat, "go", audio=False)
    assert not [e for e in events if isinstance(e, Audio)]
    assert len([e for e in events if isinstance(e, Sentence)]) == 4
    done = events[-1]
    assert isinstance(done, Done) and done.audio_ms == 0


async def test_pause_resume_and_stop_from_another_task(serve: Serve) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=2)
    url, _ = await serve(llm)
    seen: list[Event] = []
    async with connect(url) as chat:
        async with asyncio.timeout(EVENT_TIMEOUT):
            async for event in chat.say("go"):
                seen.append(event)
                if isinstance(event, Audio) and event.seq == 0:
                    await chat.pause()
                elif isinstance(event, Paused):
                    await chat.resume()
                elif isinstance(event, Resumed):
                    await chat.stop()
    assert [type(e) for e in seen if isinstance(e, Paused | Resumed | Stopped)] == [
        Paused,
        Resumed,
        Stopped,
    ]
    stopped = seen[-1]
    assert isinstance(stopped, Stopped) and stopped.spoken.startswith("One is first.")
    assert llm.closed == 1  # the LLM stream was closed: the turn really ended


async def test_a_refused_prompt_ends_say_with_an_error(serve: Serve) -> None:
    url, _ = await serve(ScriptedLLM(SENTENCES))
    async with connect(url) as chat:
        events = await collect(chat, "go", voice="no-such-voice")
        assert len(events) == 1 and isinstance(events[0], Error)
        assert events[0].turn is None and events[0].code == "bad_request"
        assert isinstance((await collect(chat, "go"))[-1], Done)  # the session goes on


async def test_a_turn_goes_on_after_the_connection_drops(serve: Serve) -> None:
    # Sentence 0's synthesis holds after its first piece, while the LLM says the rest: text
    # comes after the last frame the client gets, and the resume sends it again (it replays
    # everything after that frame).
    gate = asyncio.Event()
    tts = TrackingTTS(ToneTTS(piece_ms=100), gate_after_first_piece=gate)
    url, app = await serve(ScriptedLLM(SENTENCES), tts=tts)
    events: list[Event] = []
    async with connect(url) as chat:
        async with asyncio.timeout(EVENT_TIMEOUT):
            async for event in chat.say("go"):
                events.append(event)
                after_audio = any(isinstance(e, Audio) for e in events)
                if isinstance(event, Text) and after_audio and not gate.is_set():
                    [socket] = app[SOCKETS]
                    socket.abort()  # no close frame: the server keeps the session
                elif isinstance(event, Reconnected):
                    gate.set()  # the rest of the answer comes on the new connection
        assert chat.reconnects == 1
    reconnected = [e for e in events if isinstance(e, Reconnected)]
    assert len(reconnected) == 1 and reconnected[0].session == chat.info.session
    # Every frame once, in order; every piece of text once: as if nothing had happened.
    frames = [e for e in events if isinstance(e, Audio)]
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert b"".join(f.mp3 for f in frames) == tone_mp3(SENTENCES)
    assert "".join(e.delta for e in events if isinstance(e, Text)) == "".join(SENTENCES)
    assert [e.index for e in events if isinstance(e, Sentence)] == [0, 1, 2, 3]
    assert isinstance(events[-1], Done)


async def test_a_turn_the_server_could_not_keep_fails_with_turn_lost(serve: Serve) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=2)
    url, app = await serve(llm, resume_window=0.0)
    async with connect(url) as chat:
        with pytest.raises(TurnLost):
            async with asyncio.timeout(EVENT_TIMEOUT):
                async for event in chat.say("go"):
                    if isinstance(event, Audio):
                        app[SOCKETS][0].abort()
        llm.release.set()
        assert isinstance((await collect(chat, "again"))[-1], Done)  # a new session works


DOCS = Path(__file__).resolve().parent.parent / "docs" / "clients.md"


def docs_script() -> str:
    """The script of docs/clients.md that speaks an answer into a file."""
    text = DOCS.read_text().split("**A script that speaks an answer into a file**", 1)[1]
    return text.split("```python\n", 1)[1].split("```", 1)[0]


async def test_the_docs_script_speaks_the_answer_into_a_file(serve: Serve, tmp_path: Path) -> None:
    script = docs_script()
    assert len(script.strip().splitlines()) <= 12
    url, _ = await serve(ScriptedLLM(SENTENCES))
    (tmp_path / "speak.py").write_text(script.replace("ws://127.0.0.1:8765/ws", url))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "speak.py", cwd=tmp_path, env=CLEAN_ENV
    )
    assert await asyncio.wait_for(process.wait(), 60) == 0
    assert (tmp_path / "answer.mp3").read_bytes() == tone_mp3(SENTENCES)
