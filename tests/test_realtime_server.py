"""/v1/realtime as the server sees it: its responses in /metrics like /ws turns, and shutdown
closes its sockets with 1001 as it does /ws sessions."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import aiohttp

from tests import conftest
from tests.conftest import ScriptedLLM, free_port, start_serve
from tests.test_realtime import ANSWER, ask, events_until, next_event
from voicechat.server.app import create_app
from voicechat.tts.tone import ToneTTS


def sample(metrics: str, name: str) -> float:
    line = next(x for x in metrics.splitlines() if x.startswith(name + " ") or x.startswith(name))
    return float(line.split()[-1])


async def test_realtime_responses_are_counted_with_their_outcome_and_first_audio(
    aiohttp_client: Any,
) -> None:
    app = create_app(conftest.test_settings(), llm=ScriptedLLM(ANSWER), tts=ToneTTS())
    http = await aiohttp_client(app)
    ws = await http.ws_connect("/v1/realtime?model=gpt-realtime")
    await next_event(ws)
    await ask(ws, "What is the capital of France?")
    await events_until(ws, "response.done")
    await ws.close()
    metrics = await (await http.get("/metrics")).text()
    assert sample(metrics, 'voicechat_turns_total{outcome="done"}') == 1
    assert sample(metrics, "voicechat_time_to_first_audio_seconds_count") == 1


async def test_a_cancelled_realtime_response_counts_as_stopped_with_its_latency(
    aiohttp_client: Any,
) -> None:
    llm = ScriptedLLM(ANSWER, hold_after=1)
    app = create_app(conftest.test_settings(), llm=llm, tts=ToneTTS())
    http = await aiohttp_client(app)
    ws = await http.ws_connect("/v1/realtime?model=gpt-realtime")
    await next_event(ws)
    await ask(ws, "Tell me about Paris.")
    await events_until(ws, "response.output_audio.delta")
    await ws.send_json({"type": "response.cancel"})
    await events_until(ws, "response.done")
    metrics = await (await http.get("/metrics")).text()
    assert sample(metrics, 'voicechat_turns_total{outcome="stopped"}') == 1
    assert sample(metrics, "voicechat_stop_latency_seconds_count") == 1


async def test_sigterm_closes_a_realtime_socket_mid_answer_with_1001_and_exits() -> None:
    port = free_port()
    server = await start_serve(port, "--replay-speed", "0.25")
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"http://127.0.0.1:{port}/v1/realtime?model=x") as ws,
        ):
            await next_event(ws)
            await ask(ws, "Tell me something long.")
            await events_until(ws, "response.output_audio.delta")
            server.send_signal(signal.SIGTERM)
            while (message := await ws.receive(timeout=10)).type is aiohttp.WSMsgType.TEXT:
                pass
            assert message.type is aiohttp.WSMsgType.CLOSE and ws.close_code == 1001
        assert await asyncio.wait_for(server.wait(), 5) == 0
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
