"""POST /v1/speak over a real HTTP client: audio/mpeg, server-sent events, errors, disconnects."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import miniaudio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests import conftest
from tests.conftest import ScriptedLLM, TrackingTTS, eventually
from voicechat.errors import LLMFailed
from voicechat.llm.base import ChatMessage, LLMBackend
from voicechat.pipeline.audio import duration_ms
from voicechat.server.app import create_app
from voicechat.tts.base import TTSBackend
from voicechat.tts.tone import ToneTTS

SENTENCES = ["One is first. ", "Two comes next. ", "Three is here. ", "Four is last."]
SSE = {"Accept": "text/event-stream"}
JSON = {"Content-Type": "application/json"}


class BrokenLLM:
    """Fails before saying anything, like an endpoint answering 401."""

    name = "broken"

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        raise LLMFailed("the LLM endpoint refused the key (401)", backend=self.name)
        yield ""  # pragma: no cover - makes this an async generator

    async def aclose(self) -> None:
        return None


async def speak_client(
    aiohttp_client: Any, *, llm: LLMBackend, tts: TTSBackend | None = None, **settings: Any
) -> TestClient[Any, Any]:
    app = create_app(conftest.test_settings(**settings), llm=llm, tts=tts or ToneTTS())
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


def parse_sse(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        assert set(fields) == {"event", "data"}, block
        events.append((fields["event"], json.loads(fields["data"])))
    return events


async def test_speak_streams_the_answer_as_one_playable_mp3(aiohttp_client: Any) -> None:
    http = await speak_client(aiohttp_client, llm=ScriptedLLM(SENTENCES))
    async with http.post("/v1/speak", json={"prompt": "go"}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "audio/mpeg"
        assert response.headers["Transfer-Encoding"] == "chunked"
        body = await response.read()
    tone = ToneTTS()
    assert body == b"".join(tone.render(s.strip()) for s in SENTENCES)
    decoded = miniaudio.decode(body, nchannels=1, sample_rate=tone.sample_rate)
    assert abs(1000 * decoded.duration - duration_ms(body)) < 100


async def test_speak_sends_audio_before_the_answer_is_complete(aiohttp_client: Any) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=1)  # the LLM waits after the first sentence
    http = await speak_client(aiohttp_client, llm=llm)
    async with http.post("/v1/speak", data=json.dumps({"prompt": "go"}), headers=JSON) as response:
        first = await asyncio.wait_for(response.content.readany(), 10)
        assert first == ToneTTS().render("One is first.")[: len(first)]
        assert llm.closed == 0  # still streaming
        llm.release.set()
        rest = await response.read()
    assert miniaudio.decode(first + rest, nchannels=1, sample_rate=22050).duration > 1


async def test_speak_with_accept_event_stream_sends_the_websocket_events(
    aiohttp_client: Any,
) -> None:
    http = await speak_client(aiohttp_client, llm=ScriptedLLM(SENTENCES))
    async with http.post("/v1/speak", json={"prompt": "go", "id": "mine"}, headers=SSE) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        events = parse_sse(await resp.text())
    assert all(name == data["action"] for name, data in events)
    actions = [name for name, _ in events]
    assert actions[0] == "ready" and actions[-1] == "done" and actions.count("done") == 1
    assert events[0][1]["data"]["audio"] == {"format": "mp3", "sample_rate": 22050}
    body = [data for _, data in events[1:]]
    assert {e["turn"] for e in body} == {"mine"}
    audio = [e for e in body if e["action"] == "audio"]
    assert [e["seq"] for e in audio] == list(range(len(audio)))
    for position, event in enumerate(body):
        if event["action"] == "sentence":
            assert body[position + 1]["action"] == "audio"
            assert body[position + 1]["sentence"] == event["index"]
    done = body[-1]["data"]
    assert "".join(e["data"] for e in body if e["action"] == "text") == done["text"]
    mp3 = b"".join(base64.b64decode(e["data"]) for e in audio)
    assert done["sentences"] == 4 and done["audio_ms"] == duration_ms(mp3)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"prompt": "unterminated', 400, "bad_json"),
        (b"", 400, "bad_json"),
        (b'["a list"]', 400, "bad_request"),
        (b'{"text": "no prompt"}', 400, "bad_request"),
        (b'{"prompt": "   "}', 400, "bad_request"),
        (b'{"prompt": "hi", "voice": "nobody"}', 400, "bad_request"),
        (b'{"prompt": "hi", "id": 7}', 400, "bad_request"),
        (json.dumps({"prompt": "a" * 101}).encode(), 413, "too_large"),
        (json.dumps({"prompt": "a" * 5000}).encode(), 413, "too_large"),  # > max_message_bytes
    ],
)
async def test_speak_rejects_bad_requests_before_streaming(
    aiohttp_client: Any, body: bytes, status: int, code: str
) -> None:
    llm = ScriptedLLM(SENTENCES)
    http = await speak_client(aiohttp_client, llm=llm, max_prompt_chars=100, max_message_bytes=4096)
    for headers in (JSON, {**JSON, **SSE}):
        async with http.post("/v1/speak", data=body, headers=headers) as response:
            assert response.status == status
            assert response.content_type == "application/json"
            error = (await response.json())["error"]
            assert error["code"] == code and error["message"]
    assert llm.opened == 0


async def test_speak_answers_502_when_the_llm_fails_before_any_audio(aiohttp_client: Any) -> None:
    http = await speak_client(aiohttp_client, llm=BrokenLLM())
    async with http.post("/v1/speak", json={"prompt": "go"}) as response:
        assert response.status == 502
        error = (await response.json())["error"]
    assert error["code"] == "llm_failed" and "401" in error["message"]
    async with http.post("/v1/speak", json={"prompt": "go"}, headers=SSE) as response:
        events = parse_sse(await response.text())
    assert [name for name, _ in events] == ["ready", "error", "done"]


@asynccontextmanager
async def served(app: web.Application, *, handler_cancellation: bool) -> AsyncIterator[str]:
    """The app on a loopback port. `voicechat serve` (web.run_app) runs without handler
    cancellation, so the handler must notice a departed client itself; aiohttp's test server
    cancels the handler instead. Both must end the work."""
    runner = web.AppRunner(app, handler_cancellation=handler_cancellation)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("headers", [{}, SSE], ids=["audio", "events"])
@pytest.mark.parametrize("handler_cancellation", [False, True], ids=["serve", "cancelling"])
async def test_a_client_that_goes_away_cancels_the_turn(
    headers: dict[str, str], handler_cancellation: bool
) -> None:
    gate = asyncio.Event()  # never set: sentence 0 stays in synthesis after its first piece
    llm = ScriptedLLM(SENTENCES, hold_after=1)  # and the LLM waits after the first sentence
    tts = TrackingTTS(ToneTTS(piece_ms=100), gate_after_first_piece=gate)
    app = create_app(conftest.test_settings(), llm=llm, tts=tts)
    async with (
        served(app, handler_cancellation=handler_cancellation) as base,
        aiohttp.ClientSession() as http,
    ):
        response = await http.post(f"{base}/v1/speak", json={"prompt": "go"}, headers=headers)
        first = await asyncio.wait_for(response.content.readany(), 10)
        assert first
        assert llm.closed == 0 and tts.running == 1  # the work is in progress
        response.close()  # the client goes away mid-stream
        await eventually(lambda: llm.closed == 1 and tts.running == 0)
        assert not llm.release.is_set() and not gate.is_set()  # nothing but a cancel ended it
