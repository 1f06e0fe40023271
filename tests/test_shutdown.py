"""`voicechat serve` on SIGTERM mid-turn: clients hear 1001, the process exits within 5 s,
and its log holds neither the token nor the prompt."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import pytest
from aiohttp import WSMsgType

from tests.conftest import free_port, start_serve
from tests.rawws import Closed, RawWebSocket

pytestmark = pytest.mark.timeout(120)
TOKEN = "shutdown-test-secret"
PROMPT = "A question nobody recorded, about zebras."  # answered by samples/llm/default.jsonl


async def start_server(port: int) -> asyncio.subprocess.Process:
    # The default answer then streams for about 12 s at 0.25: SIGTERM lands mid-turn.
    return await start_serve(
        port, "--replay-speed", "0.25", env={"VOICECHAT_TOKEN": TOKEN}, stderr=True
    )


def assert_clean_log(log: str) -> None:
    assert "turn t1 started" in log  # the log is there, at INFO
    assert "ERROR" not in log and "Traceback" not in log, log
    assert TOKEN not in log
    assert "zebras" not in log


async def test_sigterm_mid_turn_closes_clients_with_1001_and_exits_within_5_s() -> None:
    port = free_port()
    server = await start_server(port)
    assert server.stderr is not None
    try:
        url = f"http://127.0.0.1:{port}/ws"
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(url, params={"token": TOKEN}) as ws,
        ):
            assert (await ws.receive_json())["action"] == "ready"
            await ws.send_json({"action": "start", "data": {"prompt": PROMPT}})
            while (await ws.receive_json(timeout=30))["action"] != "audio":
                pass
            server.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            actions = []
            while (message := await ws.receive(timeout=30)).type is WSMsgType.TEXT:
                actions.append(message.json()["action"])
            assert "done" not in actions  # the turn was cut, not finished
            assert message.type is WSMsgType.CLOSE
            assert message.data == 1001
            returncode = await asyncio.wait_for(server.wait(), 30)
            exited_after = time.monotonic() - signalled
            with pytest.raises(aiohttp.ClientConnectionError):  # nothing listens any more
                await http.ws_connect(url, params={"token": TOKEN})
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
    assert returncode == 0
    assert exited_after < 5.0, f"exit took {exited_after:.1f} s"
    assert_clean_log((await server.stderr.read()).decode())


async def test_a_client_that_never_answers_the_close_does_not_hold_the_exit_up() -> None:
    port = free_port()
    server = await start_server(port)
    assert server.stderr is not None
    try:
        raw = await RawWebSocket.connect("127.0.0.1", port, f"/ws?token={TOKEN}")
        await raw.until("ready")
        await raw.send_json({"action": "start", "data": {"prompt": PROMPT}})
        await raw.until("audio")
        server.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        returncode = await asyncio.wait_for(server.wait(), 30)  # reading nothing meanwhile
        exited_after = time.monotonic() - signalled
        with pytest.raises(Closed) as closed:
            while True:
                await raw.receive_json()
        raw.abort()
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
    assert closed.value.code == 1001
    assert returncode == 0
    assert exited_after < 5.0, f"exit took {exited_after:.1f} s"
    assert_clean_log((await server.stderr.read()).decode())
