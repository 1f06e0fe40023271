"""GET /v1/realtime driven by the real `openai` SDK (its `realtime` extra) on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestClient

from tests import conftest
from tests.conftest import ScriptedLLM, eventually
from voicechat.llm.base import LLMBackend
from voicechat.pipeline.encoders import PCM_RATE
from voicechat.server.app import create_app
from voicechat.tts.tone import ToneTTS

SENTENCES = ["One is first. ", "Two comes next. ", "Three is here at last."]
USER_ITEM = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
MS_PER_CHAR = 30

Connection = Any  # openai's AsyncRealtimeConnection (or the beta one)
Factory = Callable[..., Awaitable[tuple[openai.AsyncOpenAI, TestClient[Any, Any]]]]


@pytest.fixture
async def realtime(aiohttp_client: Any) -> AsyncIterator[Factory]:
    clients: list[openai.AsyncOpenAI] = []

    async def connect(
        *, llm: LLMBackend, key: str = "anything", **settings: Any
    ) -> tuple[openai.AsyncOpenAI, TestClient[Any, Any]]:
        app = create_app(conftest.test_settings(**settings), llm=llm, tts=ToneTTS())
        http: TestClient[Any, Any] = await aiohttp_client(app)
        base = http.make_url("/v1")
        # The beta client always says wss:// unless it is given websocket_base_url.
        client = openai.AsyncOpenAI(
            base_url=str(base), websocket_base_url=str(base.with_scheme("ws")), api_key=key
        )
        clients.append(client)
        return client, http

    yield connect
    for client in clients:
        await client.close()


async def next_event(connection: Connection) -> dict[str, Any]:
    raw = await asyncio.wait_for(connection.recv_bytes(), conftest.EVENT_TIMEOUT)
    event: dict[str, Any] = json.loads(raw)
    return event


async def until(connection: Connection, kind: str) -> list[dict[str, Any]]:
    events = []
    while True:
        events.append(await next_event(connection))
        if events[-1]["type"] == kind:
            return events


def pcm_of(events: list[dict[str, Any]], kind: str = "response.output_audio.delta") -> bytes:
    return b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == kind)


async def ask(connection: Connection, text: str = "Hi") -> list[dict[str, Any]]:
    item = {**USER_ITEM, "content": [{"type": "input_text", "text": text}]}
    await connection.conversation.item.create(item=item)
    await connection.response.create()
    return await until(connection, "response.done")


async def test_a_text_turn_is_answered_with_transcript_and_pcm_audio(realtime: Factory) -> None:
    client, _ = await realtime(llm=ScriptedLLM(SENTENCES))
    async with client.realtime.connect(model="gpt-realtime") as connection:
        created = await next_event(connection)
        assert created["type"] == "session.created"
        await connection.session.update(
            session={
                "type": "realtime",
                "output_modalities": ["audio"],
                "audio": {
                    "output": {"voice": "alloy", "format": {"type": "audio/pcm", "rate": 24000}}
                },
            }
        )
        updated = await next_event(connection)
        assert updated["type"] == "session.updated"
        assert updated["session"]["audio"]["output"]["voice"] == "alloy"
        events = await ask(connection)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["conversation.item.added", "conversation.item.done"]
    body = kinds[2:]
    assert body[:3] == ["response.created", "response.output_item.added", "conversation.item.added"]
    first_transcript = body.index("response.output_audio_transcript.delta")
    first_audio = body.index("response.output_audio.delta")
    assert first_transcript < first_audio < body.index("response.output_audio.done")
    assert "response.output_audio.delta" not in body[body.index("response.output_audio.done") :]
    assert body[-1] == "response.done" and events[-1]["response"]["status"] == "completed"
    transcript = "".join(e["delta"] for e in events if e["type"].endswith("transcript.delta"))
    assert transcript == "".join(SENTENCES)
    seconds = len(pcm_of(events)) / (2 * PCM_RATE)
    expected = sum(MS_PER_CHAR * len(s.strip()) for s in SENTENCES) / 1000
    assert seconds == pytest.approx(expected, abs=0.2)


async def test_cancel_mid_answer_stops_the_llm_and_no_audio_follows_done(
    realtime: Factory,
) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=1)  # the LLM waits after the first sentence
    client, _ = await realtime(llm=llm)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await next_event(connection)
        await connection.conversation.item.create(item=USER_ITEM)
        await connection.response.create()
        await until(connection, "response.output_audio.delta")
        await connection.response.cancel()  # as the SDK sends it: no response_id
        events = await until(connection, "response.done")
        assert events[-1]["response"]["status"] == "cancelled"
        assert events[-1]["response"]["status_details"]["reason"] == "client_cancelled"
        await eventually(lambda: llm.closed == 1)
        llm.release.set()  # were the stream still read, the rest of the answer would come now
        await connection.send({"type": "no.such.event", "event_id": "after"})
        after = await until(connection, "error")
    assert [e["type"] for e in after] == ["error"]
    assert after[0]["error"]["event_id"] == "after"


async def test_truncate_cuts_the_answer_to_what_was_heard(realtime: Factory) -> None:
    llm = ScriptedLLM(SENTENCES)
    client, _ = await realtime(llm=llm)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await next_event(connection)
        events = await ask(connection, "First question")
        item_id = events[-1]["response"]["output"][0]["id"]
        await connection.conversation.item.truncate(
            item_id=item_id,
            content_index=0,
            audio_end_ms=200,  # within the first sentence
        )
        truncated = await next_event(connection)
        assert truncated["type"] == "conversation.item.truncated"
        assert truncated["audio_end_ms"] == 200
        await ask(connection, "Second question")
    history = llm.seen[-1]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]
    assert history[2]["content"] == SENTENCES[0].strip()
    assert history[3]["content"] == "Second question"


async def test_truncate_beyond_the_audio_is_an_error(realtime: Factory) -> None:
    client, _ = await realtime(llm=ScriptedLLM(SENTENCES))
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await next_event(connection)
        events = await ask(connection)
        item_id = events[-1]["response"]["output"][0]["id"]
        await connection.conversation.item.truncate(
            item_id=item_id, content_index=0, audio_end_ms=60_000
        )
        error = await next_event(connection)
    assert error["type"] == "error" and error["error"]["param"] == "audio_end_ms"


async def test_audio_input_events_get_an_error_and_the_session_goes_on(
    realtime: Factory,
) -> None:
    client, _ = await realtime(llm=ScriptedLLM(SENTENCES))
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await next_event(connection)
        await connection.input_audio_buffer.append(audio="AAAA", event_id="mine")
        error = await next_event(connection)
        assert error["type"] == "error" and error["error"]["event_id"] == "mine"
        events = await ask(connection)
    assert events[-1]["response"]["status"] == "completed"


async def test_the_beta_client_gets_the_beta_names(realtime: Factory) -> None:
    client, _ = await realtime(llm=ScriptedLLM(SENTENCES))
    beta = getattr(client.beta, "realtime", None)
    if beta is None:
        pytest.skip("this openai SDK has no beta realtime client")
    async with beta.connect(model="gpt-4o-realtime-preview") as connection:
        await next_event(connection)
        await connection.session.update(
            session={
                "modalities": ["audio", "text"],
                "voice": "echo",
                "output_audio_format": "pcm16",
            }
        )
        assert (await next_event(connection))["type"] == "session.updated"
        await connection.conversation.item.create(item=USER_ITEM)
        await connection.response.create()
        events = await until(connection, "response.done")
    kinds = {e["type"] for e in events}
    assert {"conversation.item.created", "response.audio.delta", "response.audio.done"} <= kinds
    assert len(pcm_of(events, "response.audio.delta")) > 0


@pytest.mark.parametrize(
    ("headers", "protocols", "status"),
    [
        ({}, (), 401),
        ({"Authorization": "Bearer wrong"}, (), 401),
        ({"Authorization": "Bearer s3cret"}, (), 101),
        ({}, ("realtime", "openai-insecure-api-key.s3cret"), 101),
        ({"Authorization": "Bearer s3cret", "Origin": "https://evil.example"}, (), 403),
    ],
)
async def test_the_token_and_origin_gates(
    realtime: Factory, headers: dict[str, str], protocols: tuple[str, ...], status: int
) -> None:
    _, http = await realtime(llm=ScriptedLLM(SENTENCES), token="s3cret")
    if status != 101:
        with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
            await http.ws_connect("/v1/realtime", headers=headers, protocols=protocols)
        assert raised.value.status == status
        return
    ws = await http.ws_connect("/v1/realtime", headers=headers, protocols=protocols)
    assert json.loads((await ws.receive()).data)["type"] == "session.created"
    if protocols:
        assert ws.protocol == "realtime"
    await ws.close()
