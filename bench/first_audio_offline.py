"""Time to first audio with the default TTS chain (edge,piper) when edge cannot be reached.

    .venv/bin/python bench/first_audio_offline.py

Three cases, each a fresh server on loopback with the replay LLM (no delays), two turns each:
``piper`` alone (the baseline); ``edge,piper`` as this machine has it (edge's host does not
resolve, or does when online); and ``edge,piper`` with edge pointed at a port that accepts
TCP and never answers TLS, as when DNS or packets hang (the 1.5 s connect bound applies).
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import edge_tts.communicate
from aiohttp import web

from voicechat.config import Settings
from voicechat.server.app import create_app

PROMPT = "What is the capital of France?"


async def first_audio(url: str) -> tuple[float, str]:
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        ready = json.loads(await ws.receive_str())["data"]["tts"]
        started = time.perf_counter()
        await ws.send_json({"action": "start", "data": {"prompt": PROMPT}})
        ttfa = float("nan")
        async for message in ws:
            event = json.loads(message.data)
            if event["action"] == "audio" and ttfa != ttfa:
                ttfa = time.perf_counter() - started
            if event["action"] == "done":
                return ttfa, ready
    raise RuntimeError("no done")


async def run(tts: str, runs: int = 2) -> list[tuple[float, str]]:
    runner = web.AppRunner(create_app(Settings(llm="replay", replay_speed=0, tts=tts)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/ws"
    try:
        return [await first_audio(url) for _ in range(runs)]
    finally:
        await runner.cleanup()


async def silent_tls_port() -> tuple[asyncio.Server, int]:
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def show(label: str, results: list[tuple[float, str]]) -> None:
    cells = ", ".join(
        f"turn {n + 1}: {t * 1000:.0f} ms (ready: {r})" for n, (t, r) in enumerate(results)
    )
    print(f"{label:<40} {cells}")


async def main() -> None:
    show("piper", await run("piper"))
    show("edge,piper (edge unreachable here)", await run("edge,piper"))
    server, port = await silent_tls_port()
    edge_tts.communicate.WSS_URL = f"wss://127.0.0.1:{port}/edge/v1?x=1"
    show("edge,piper (edge connect hangs)", await run("edge,piper"))
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
