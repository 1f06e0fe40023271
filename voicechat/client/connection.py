"""One WebSocket to a voicechat server, raw messages in and out: what :mod:`.chat` (the client
API, with its reconnects and typed events) is built on.

    async with VoiceConnection.open(url) as voice:
        await voice.start("Hello", turn_id="a")
        while (message := await voice.receive()) is not None: ...

One reader (whoever calls :meth:`VoiceConnection.receive`), one writer (:meth:`send`, locked).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from voicechat.client.events import Ready, parse_ready

READY_TIMEOUT = 30.0  # seconds for the server's `ready` after connecting


class ConnectionFailed(Exception):
    """The server could not be reached or did not speak the protocol."""


def websocket_url(url: str) -> str:
    """``http://host:port`` or ``ws://host:port/ws`` → the WebSocket URL (``/ws`` when no path)."""
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path if parts.path not in ("", "/") else "/ws"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


class VoiceConnection:
    """One session with a voicechat server."""

    def __init__(
        self, ws: aiohttp.ClientWebSocketResponse, info: Ready, ready: dict[str, Any]
    ) -> None:
        self._ws = ws
        self.info = info
        self.ready = ready  # the `ready` message, as it came
        self._send_lock = asyncio.Lock()

    @staticmethod
    @asynccontextmanager
    async def open(url: str, *, token: str | None = None) -> AsyncIterator[VoiceConnection]:
        """Connect (with the server's shared-secret ``token``, if it has one), wait for
        ``ready``, and close the socket on the way out."""
        target = websocket_url(url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession() as http:
            try:
                ws = await http.ws_connect(target, autoping=True, headers=headers)
            except (aiohttp.ClientError, OSError) as exc:
                raise ConnectionFailed(f"cannot connect to {target}: {exc}") from exc
            async with ws:
                try:
                    ready = await ws.receive_json(timeout=READY_TIMEOUT)
                    info = parse_ready(ready)
                except (TypeError, ValueError, KeyError, TimeoutError) as exc:
                    raise ConnectionFailed(f"{target} did not say `ready`: {exc!r}") from exc
                yield VoiceConnection(ws, info, ready)

    async def send(self, action: str, data: Any = None, **meta: Any) -> None:
        message: dict[str, Any] = {"action": action, **meta}
        if data is not None:
            message["data"] = data
        async with self._send_lock:
            if self._ws.closed:
                raise ConnectionFailed("the connection to the server is closed")
            try:
                await self._ws.send_str(json.dumps(message, ensure_ascii=False))
            except ConnectionError as exc:
                raise ConnectionFailed(f"the connection to the server was lost: {exc}") from exc

    async def start(
        self,
        prompt: str,
        *,
        voice: str | None = None,
        turn_id: str | None = None,
        audio: bool = True,
    ) -> None:
        data: dict[str, Any] = {"prompt": prompt}
        if not audio:
            data["audio"] = False  # a text-only turn
        if voice is not None:
            data["voice"] = voice
        if turn_id is not None:
            data["id"] = turn_id
        await self.send("start", data)

    async def pause(self) -> None:
        await self.send("pause")

    async def resume(self) -> None:
        await self.send("resume")

    async def stop(self) -> None:
        await self.send("stop")

    async def played(self, turn: str, seq: int) -> None:
        await self.send("played", turn=turn, seq=seq)

    @property
    def closed(self) -> bool:
        return self._ws.closed

    async def close(self) -> None:
        await self._ws.close()

    async def receive(self) -> dict[str, Any] | None:
        """The next server event, or None once the socket is closed."""
        message = await self._ws.receive()
        if message.type is not aiohttp.WSMsgType.TEXT:
            return None
        event: dict[str, Any] = json.loads(message.data)
        return event
