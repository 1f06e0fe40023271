"""500 connect/drop cycles leave no task behind and no memory growing."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

import aiohttp
import pytest

from tests.conftest import ScriptedLLM, eventually
from tests.conftest import test_settings as make_settings
from tests.rawws import RawWebSocket
from voicechat.server.app import create_app
from voicechat.server.keys import SESSIONS
from voicechat.tts.tone import ToneTTS

CYCLES = 500
WARM_UP = 100  # caches (yarl, aiohttp, the regex engine) fill during the first cycles
GROWTH_LIMIT = 100 * 1024  # bytes over the last 400 cycles (measured: about 10 KiB, converging);
# a leaked session with its socket and turn would be several KiB a cycle
WATCHED = ("*/voicechat/*", "*/aiohttp/*", "*/asyncio/*", "*/yarl/*", "*/multidict/*")

pytestmark = pytest.mark.timeout(180)


async def cycle(http: Any, client: aiohttp.ClientSession, n: int) -> None:
    """Four ways to leave: at once by reset, politely, mid-turn by reset, mid-turn politely.
    (Not through ``http.ws_connect``: the test client keeps every socket it opened.)"""
    url = http.make_url("/ws")
    if n % 4 == 1:
        ws = await client.ws_connect(url)
        await ws.receive_json()
        await ws.close()
        return
    if n % 4 == 3:
        ws = await client.ws_connect(url)
        await ws.receive_json()
        await ws.send_json({"action": "start", "data": {"prompt": "go"}})
        while (await ws.receive_json())["action"] != "audio":
            pass
        await ws.close()
        return
    raw = await RawWebSocket.connect(http.host, http.port)
    await raw.until("ready")
    if n % 4 == 2:
        await raw.send_json({"action": "start", "data": {"prompt": "go"}})
        await raw.until("audio")
    raw.abort()


async def settle(app: Any) -> None:
    await eventually(lambda: not app[SESSIONS])
    await asyncio.sleep(0)  # let the handlers' last steps run
    gc.collect()


def watched_bytes(snapshot: tracemalloc.Snapshot) -> int:
    filters = [tracemalloc.Filter(True, pattern) for pattern in WATCHED]
    return sum(stat.size for stat in snapshot.filter_traces(filters).statistics("filename"))


async def test_connect_drop_cycles_leak_no_task_and_no_memory(aiohttp_client: Any) -> None:
    # An answer held open forever: every mid-turn drop leaves a live LLM stream to clean up.
    llm = ScriptedLLM(["A first sentence. ", "A second one. "], hold_after=1)
    # Dropped sessions are closed at once, not parked for a resume (whose expiry test_resume.py
    # covers); parked ones would count towards max_sessions for their window.
    app = create_app(make_settings(resume_window=0), llm=llm, tts=ToneTTS())
    http = await aiohttp_client(app)
    async with aiohttp.ClientSession() as client:
        await settle(app)
        baseline_tasks = len(asyncio.all_tasks())
        tracemalloc.start()
        try:
            for n in range(WARM_UP):
                await cycle(http, client, n)
                llm.seen.clear()  # the fake's own record of prompts is not the server's memory
            await settle(app)
            before = watched_bytes(tracemalloc.take_snapshot())
            for n in range(WARM_UP, CYCLES):
                await cycle(http, client, n)
                llm.seen.clear()
            await settle(app)
            await eventually(lambda: len(asyncio.all_tasks()) <= baseline_tasks)
            after = watched_bytes(tracemalloc.take_snapshot())
        finally:
            tracemalloc.stop()
    assert llm.opened == CYCLES // 2 and llm.closed == llm.opened
    assert after - before < GROWTH_LIMIT, f"grew by {after - before} bytes"
