"""GET /v1/realtime: the text-in, audio-out subset of OpenAI's Realtime API, over a real
WebSocket to the server on loopback, with the events the `openai` SDK sends."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import openai
from aiohttp import ClientWebSocketResponse

from tests import conftest
from tests.conftest import ScriptedLLM
from voicechat.server.app import create_app
from voicechat.tts.tone import ToneTTS

ANSWER = ["Paris is the capital. ", "It lies on the Seine. ", "Many people visit it."]
TIMEOUT = 10


async def connect(aiohttp_client: Any, llm: ScriptedLLM, **settings: Any) -> Any:
    app = create_app(conftest.test_settings(**settings), llm=llm, tts=ToneTTS())
    http = await aiohttp_client(app)
    return await http.ws_connect(
        "/v1/realtime?model=gpt-realtime", headers={"Authorization": "Bearer anything"}
    )


async def next_event(ws: ClientWebSocketResponse) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await ws.receive_str(timeout=TIMEOUT))
    return event


async def events_until(ws: ClientWebSocketResponse, kind: str) -> list[dict[str, Any]]:
    events = []
    while True:
        event = await next_event(ws)
        events.append(event)
        if event["type"] == kind:
            return events


async def ask(ws: ClientWebSocketResponse, text: str) -> None:
    await ws.send_json(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            },
        }
    )
    await ws.send_json({"type": "response.create"})


async def test_a_text_turn_streams_transcript_and_pcm_audio_then_done(aiohttp_client: Any) -> None:
    ws = await connect(aiohttp_client, ScriptedLLM(ANSWER))
    assert (await next_event(ws))["type"] == "session.created"
    await ask(ws, "What is the capital of France?")
    events = await events_until(ws, "response.done")
    kinds = [e["type"] for e in events]
    assert kinds.index("response.created") < kinds.index("response.output_item.added")
    assert kinds.index("response.output_item.added") < kinds.index("response.output_audio.delta")
    assert kinds.index("response.output_audio.done") < kinds.index("response.done")
    transcript = "".join(
        e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"
    )
    assert transcript.split() == "".join(ANSWER).split()
    audio = [e for e in events if e["type"] == "response.output_audio.delta"]
    pcm_bytes = sum(len(base64.b64decode(e["delta"])) for e in audio)
    assert pcm_bytes > 0 and pcm_bytes % 2 == 0  # 16-bit samples
    assert events[-1]["response"]["status"] == "completed"


async def test_cancel_mid_answer_ends_with_cancelled_and_no_audio_after_it(
    aiohttp_client: Any,
) -> None:
    llm = ScriptedLLM(ANSWER, hold_after=1)
    ws = await connect(aiohttp_client, llm)
    await next_event(ws)
    await ask(ws, "Tell me about Paris.")
    await events_until(ws, "response.output_audio.delta")
    await ws.send_json({"type": "response.cancel"})  # the SDK sends no response_id
    done = (await events_until(ws, "response.done"))[-1]
    assert done["response"]["status"] == "cancelled"
    assert llm.closed == llm.opened == 1  # the LLM stream was closed, not left running
    # Nothing of the cancelled response after response.done: the next event answers a ping.
    await ws.send_json({"type": "input_audio_buffer.append", "event_id": "ev-1", "audio": ""})
    after = await next_event(ws)
    assert after["type"] == "error" and after["error"]["event_id"] == "ev-1"


async def test_an_unsupported_event_gets_error_and_the_session_goes_on(aiohttp_client: Any) -> None:
    ws = await connect(aiohttp_client, ScriptedLLM(ANSWER))
    await next_event(ws)
    await ws.send_json({"type": "no.such.event", "event_id": "ev-7"})
    error = await next_event(ws)
    assert error["type"] == "error" and error["error"]["event_id"] == "ev-7"
    await ask(ws, "Still there?")
    assert (await events_until(ws, "response.done"))[-1]["response"]["status"] == "completed"


async def test_the_conversation_is_the_sessions_memory(aiohttp_client: Any) -> None:
    llm = ScriptedLLM(ANSWER)
    ws = await connect(aiohttp_client, llm)
    await next_event(ws)
    await ask(ws, "First question")
    await events_until(ws, "response.done")
    await ask(ws, "Second question")
    await events_until(ws, "response.done")
    second = [(m["role"], m["content"]) for m in llm.seen[1]]
    assert ("user", "First question") in second
    assert any(role == "assistant" and "Paris" in text for role, text in second)
    assert second[-1] == ("user", "Second question")


async def test_a_wrong_key_is_refused_when_the_server_has_a_token(aiohttp_client: Any) -> None:
    app = create_app(conftest.test_settings(token="s3cret"), llm=ScriptedLLM(ANSWER), tts=ToneTTS())
    http = await aiohttp_client(app)
    refused = await http.get("/v1/realtime", headers={"Authorization": "Bearer wrong"})
    assert refused.status == 401
    assert (await refused.json())["error"]["code"] == "invalid_api_key"


async def test_truncate_cuts_the_answer_to_what_was_heard_in_the_next_questions_history(
    aiohttp_client: Any,
) -> None:
    llm = ScriptedLLM(ANSWER)
    ws = await connect(aiohttp_client, llm)
    await next_event(ws)
    await ask(ws, "Tell me about Paris.")
    events = await events_until(ws, "response.done")
    item_id = next(e for e in events if e["type"] == "response.output_item.added")["item"]["id"]
    # Heard: only the start of the first sentence.
    await ws.send_json(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 10,
        }
    )
    assert (await next_event(ws))["type"] == "conversation.item.truncated"
    await ask(ws, "And then?")
    await events_until(ws, "response.done")
    assistant = [m["content"] for m in llm.seen[1] if m["role"] == "assistant"]
    assert assistant == [ANSWER[0].strip()]


async def test_the_openai_sdks_realtime_client_gets_a_spoken_answer_and_can_cancel(
    aiohttp_client: Any,
) -> None:
    llm = ScriptedLLM(ANSWER, hold_after=1)
    app = create_app(conftest.test_settings(), llm=llm, tts=ToneTTS())
    http = await aiohttp_client(app)
    client = openai.AsyncOpenAI(api_key="anything", base_url=str(http.make_url("/v1")))
    async with client.realtime.connect(model="gpt-realtime") as connection:
        assert (await asyncio.wait_for(connection.recv(), TIMEOUT)).type == "session.created"
        await connection.session.update(
            session={
                "type": "realtime",
                "output_modalities": ["audio"],
                "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}}},
            }
        )
        assert (await asyncio.wait_for(connection.recv(), TIMEOUT)).type == "session.updated"
        await connection.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Tell me about Paris."}],
            }
        )
        await connection.response.create()
        kinds = []
        while (event := await asyncio.wait_for(connection.recv(), TIMEOUT)).type != (
            "response.output_audio.delta"
        ):
            kinds.append(event.type)
        assert "response.created" in kinds
        await connection.response.cancel()
        while (event := await asyncio.wait_for(connection.recv(), TIMEOUT)).type != (
            "response.done"
        ):
            pass
        assert event.response.status == "cancelled"
    assert llm.closed == llm.opened == 1
