"""Writing text frames to one WebSocket without ever waiting forever on a client that does not
read: a write that cannot finish within ``send_timeout`` reports the client as stuck."""

from __future__ import annotations

import asyncio
import enum

from aiohttp import web


class Written(enum.Enum):
    OK = "ok"
    GONE = "gone"  # the peer went away mid-send: not an error
    STUCK = "stuck"  # the socket stayed full for send_timeout


class SocketWriter:
    """The socket a session currently writes to (a resume replaces it)."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        *,
        send_timeout: float,
    ) -> None:
        self.ws = ws
        self._transport = transport
        self._send_timeout = send_timeout
        # Since when the client has left a backlog unread. It is the socket's, not a write's:
        # a write that is cancelled (a barge-in stops the turn) does not restart the clock.
        self._backlog_since: float | None = None

    async def write(self, text: str) -> Written:
        try:
            if self._may_block(len(text)):
                loop = asyncio.get_running_loop()
                if self._backlog_since is None:
                    self._backlog_since = loop.time()
                deadline = self._backlog_since + self._send_timeout
                if loop.time() >= deadline:
                    return Written.STUCK
                # Blocks while the socket's buffer is full: a slow reader slows the turn.
                async with asyncio.timeout_at(deadline):
                    await self.ws.send_str(text)
                if not self._may_block(0):
                    self._backlog_since = None  # the client read its backlog down
            else:
                self._backlog_since = None
                await self.ws.send_str(text)  # returns at once: no timer to arm and cancel
        except ConnectionError:
            return Written.GONE
        except TimeoutError:
            return Written.STUCK
        return Written.OK

    def _may_block(self, chars: int) -> bool:
        """Whether writing ``chars`` characters may wait for the client to read. aiohttp waits
        only while the transport has paused writing, which it does above the buffer's
        high-water mark and undoes at the low one: at or below that, and with room for this
        message (at most 4 bytes a character) under the high mark, a write cannot wait, and a
        timer armed and cancelled for every message costs more than the write
        (docs/benchmarks.md)."""
        transport = self._transport
        if transport is None:
            return True
        low, high = transport.get_write_buffer_limits()
        size = transport.get_write_buffer_size()
        return size > low or size + 4 * chars > high

    def abort(self) -> None:
        """Drop the connection and its unsent buffer; the handler then cleans up."""
        if self._transport is not None:
            self._transport.abort()
