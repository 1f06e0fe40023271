"""Shared fixtures: the app on loopback with small fake backends, and a protocol client."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from tests.edge_upstream import EDGE_PATH, VOICES_PATH, EdgeUpstream
from tests.upstream import Upstream
from voicechat.config import Settings
from voicechat.llm.base import ChatMessage, LLMBackend
from voicechat.server.app import create_app
from voicechat.tts.base import TTSBackend
from voicechat.tts.tone import ToneTTS

pytest_plugins = ["tests.browser"]  # the browser tests' fixtures: browser, open_page

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
EVENT_TIMEOUT = 10.0
# The environment for a voicechat subprocess: none of the developer's own settings or keys.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("VOICECHAT_", "OPENAI_"))}


def free_port() -> int:
    """A loopback port that nothing listens on (until someone binds it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def start_serve(
    port: int,
    *flags: str,
    env: dict[str, str] | None = None,
    stderr: bool = False,
    max_open_files: int | None = None,
) -> asyncio.subprocess.Process:
    """``voicechat serve`` (tone TTS, replayed LLM) in a subprocess, once it is listening;
    ``max_open_files`` sets its descriptor limit (soft and hard)."""

    def limit_files() -> None:
        if max_open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_open_files, max_open_files))

    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "voicechat", "serve", "--port", str(port), "--tts", "tone"),
        *flags,
        env={**CLEAN_ENV, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE if stderr else None,
        preexec_fn=limit_files,
    )
    assert server.stdout is not None
    line = await asyncio.wait_for(server.stdout.readline(), 60)
    assert f"listening on http://127.0.0.1:{port}/" in line.decode(), line
    return server


def test_settings(**overrides: Any) -> Settings:
    # No pacing unless a test asks for it: most tests check order, not real-time delivery.
    values: dict[str, Any] = {"llm": "replay", "replay_speed": 0.0, "tts": "tone", "lead": 0.0}
    values.update(overrides)
    return Settings(**values)


class ScriptedLLM:
    """Yields the given deltas; ``hold_after`` pauses the stream after that many deltas until
    ``release`` is set. Records whether its stream was closed."""

    name = "scripted"

    def __init__(self, deltas: Sequence[str], *, hold_after: int | None = None) -> None:
        self.deltas = list(deltas)
        self.hold_after = hold_after
        self.release = asyncio.Event()
        self.opened = 0
        self.closed = 0
        self.seen: list[list[ChatMessage]] = []

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        self.opened += 1
        self.seen.append(list(messages))
        try:
            for index, delta in enumerate(self.deltas):
                if index == self.hold_after:
                    await self.release.wait()
                await asyncio.sleep(0)
                yield delta
        finally:
            self.closed += 1

    async def aclose(self) -> None:
        return None


@dataclass
class TrackingTTS:
    """Wraps a TTS backend and counts synthesis calls that started, finished and were closed."""

    inner: TTSBackend
    latency_by_index: Sequence[float] = ()
    gate_after_first_piece: asyncio.Event | None = None  # holds sentence 0 after one piece
    started: int = 0
    ended: int = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    def voices(self) -> list[str]:
        return self.inner.voices()

    @property
    def running(self) -> int:
        return self.started - self.ended

    async def synthesize(
        self, text: str, *, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        index = self.started
        self.started += 1
        try:
            if index < len(self.latency_by_index):
                await asyncio.sleep(self.latency_by_index[index])
            async for piece in self.inner.synthesize(text, voice=voice):
                yield piece
                if index == 0 and self.gate_after_first_piece is not None:
                    await self.gate_after_first_piece.wait()
        finally:
            self.ended += 1

    async def aclose(self) -> None:
        await self.inner.aclose()


class VoiceClient:
    """The client side of the protocol over a real WebSocket, with every event kept."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def send(self, action: str, data: Any = None) -> None:
        message: dict[str, Any] = {"action": action}
        if data is not None:
            message["data"] = data
        await self.ws.send_str(json.dumps(message))

    async def start(self, prompt: str, **data: Any) -> None:
        await self.send("start", {"prompt": prompt, **data})

    async def next_event(self) -> dict[str, Any]:
        message = await asyncio.wait_for(self.ws.receive(), EVENT_TIMEOUT)
        assert message.type is WSMsgType.TEXT, f"expected a text frame, got {message!r}"
        event: dict[str, Any] = json.loads(message.data)
        self.events.append(event)
        return event

    async def until(
        self, action: str, predicate: Callable[[dict[str, Any]], bool] = lambda e: True
    ) -> list[dict[str, Any]]:
        """Receive events up to and including the first ``action`` that matches; return them."""
        received = []
        while True:
            event = await self.next_event()
            received.append(event)
            if event["action"] == action and predicate(event):
                return received

    async def turn(self, prompt: str, **data: Any) -> list[dict[str, Any]]:
        await self.start(prompt, **data)
        return await self.until("done")


ClientFactory = Callable[..., Awaitable[tuple[VoiceClient, TestClient[Any, Any]]]]


@pytest.fixture
def voice_client(aiohttp_client: Any) -> ClientFactory:
    """``await voice_client(llm=..., tts=..., **settings)`` → a connected client past ``ready``."""

    async def connect(
        *, llm: LLMBackend | None = None, tts: TTSBackend | None = None, **settings: Any
    ) -> tuple[VoiceClient, TestClient[Any, Any]]:
        app = create_app(test_settings(**settings), llm=llm, tts=tts or ToneTTS())
        http = await aiohttp_client(app)
        client = VoiceClient(await http.ws_connect("/ws"))
        ready = await client.next_event()
        assert ready["action"] == "ready"
        return client, http

    return connect


async def eventually(condition: Callable[[], bool], *, within: float = EVENT_TIMEOUT) -> None:
    """Wait until ``condition()`` holds, or fail. For states no event announces (task counts,
    closed streams), checked every few milliseconds; the bound is a failure, not a guess."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - these states have no event to wait on
            await asyncio.sleep(0.005)


def audio_of(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["action"] == "audio"]


# Loopback upstreams -----------------------------------------------------------------------


@pytest.fixture
async def upstream(aiohttp_server: Any) -> tuple[Upstream, str]:
    """The loopback OpenAI-compatible endpoint and its base URL (``.../v1``)."""
    state = Upstream(SAMPLES / "llm")
    server: TestServer = await aiohttp_server(state.app())
    return state, str(server.make_url("/v1"))


@pytest.fixture
async def edge_upstream(aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch) -> EdgeUpstream:
    """The loopback Edge read-aloud service, with edge-tts pointed at it (its URLs are the
    only thing patched)."""
    import edge_tts.communicate
    import edge_tts.voices

    state = EdgeUpstream()
    server: TestServer = await aiohttp_server(state.app())
    token = edge_tts.constants.TRUSTED_CLIENT_TOKEN
    wss = f"{server.make_url(EDGE_PATH)}?TrustedClientToken={token}".replace("http", "ws", 1)
    voices = f"{server.make_url(VOICES_PATH)}?trustedclienttoken={token}"
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", wss)
    monkeypatch.setattr(edge_tts.voices, "VOICE_LIST", voices)
    return state
