"""The one door from the client wing into the server wing: a server in this process, for
``voicechat say``, ``chat`` and ``demo`` when no ``--url`` is given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from voicechat.config import Settings
from voicechat.server.app import create_app


@asynccontextmanager
async def local_server(settings: Settings) -> AsyncIterator[str]:
    """Run the server in this process on a free loopback port; yield its WebSocket URL."""
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        await runner.cleanup()
