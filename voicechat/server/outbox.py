"""Everything a session sends goes through its :class:`Outbox`, the socket's only writer.

This is where the two promises of the protocol are kept: nothing of a stopped turn is written
once the stop is decided, and no ``sentence``/``audio`` frame is written while its turn is
paused. A turn's messages also wait while the connection is gone, and are kept in a
:class:`~voicechat.server.resume.ReplayBuffer`, so that a client that comes back (:meth:`attach`)
gets every frame it missed, once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WebSocketError, WSCloseCode, web

from voicechat import protocol
from voicechat.pipeline.turn import Turn
from voicechat.server.resume import ReplayBuffer
from voicechat.server.socket_writer import SocketWriter, Written

log = logging.getLogger("voicechat.outbox")


class Outbox:
    """One session's writer; ``on_sent`` sees every message that was written."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        *,
        send_timeout: float,
        replay_bytes: int,
        on_sent: Callable[[dict[str, Any]], None],
    ) -> None:
        self._send_timeout = send_timeout
        self._socket = SocketWriter(ws, transport, send_timeout=send_timeout)
        self._attached = asyncio.Event()  # cleared while the connection is gone
        self._attached.set()
        self._replay = ReplayBuffer(replay_bytes)
        self._lock = asyncio.Lock()
        self._on_sent = on_sent
        self.closed = False  # nothing is written any more

    @property
    def ws(self) -> web.WebSocketResponse:
        return self._socket.ws

    async def send(
        self, message: dict[str, Any], *, turn: Turn | None = None, hold_while_paused: bool = False
    ) -> bool:
        """Write one message; return False when it was dropped (stopped turn, closed session).

        A turn's messages wait while the turn is paused (``hold_while_paused``) or while the
        connection is gone, and are kept for a resume; other messages are then dropped."""
        text = protocol.dump(message)
        while True:
            if turn is not None:
                if hold_while_paused:
                    await turn.wait_resumed()
                await self._attached.wait()
            async with self._lock:
                if self.closed or (turn is not None and turn.stopped):
                    return False
                if turn is None and not self._attached.is_set():
                    return False
                if turn is not None and (
                    (hold_while_paused and turn.paused) or not self._attached.is_set()
                ):
                    continue  # paused or disconnected between our wait and the lock
                if turn is not None:
                    self._replay.add(turn.id, message.get("seq"), text)
                return await self._write(text, keep=turn is not None, message=message)

    async def _write(self, text: str, *, keep: bool, message: dict[str, Any] | None = None) -> bool:
        written = await self._socket.write(text)
        if written is Written.GONE:
            self._attached.clear()
            return keep  # a turn's message stays in the replay buffer for a resume
        if written is Written.STUCK:
            log.warning("the client read nothing for %g s; disconnecting it", self._send_timeout)
            self.closed = True
            self._socket.abort()
            return False
        if message is not None:
            self._on_sent(message)
        return True

    # -- a dropped connection and a resume (see resume.py) ----------------------------------

    def dropped(self) -> bool:
        """Whether the connection was lost (no close frame, no pong): not closed by the client,
        nor by the server (idle, too large, a protocol error), which are never resumed."""
        ws = self._socket.ws
        # A frame too large, bad UTF-8 or a protocol error also ends as 1006, with the
        # WebSocketError that made the server close it.
        lost = ws.close_code in (None, WSCloseCode.ABNORMAL_CLOSURE)
        return lost and not isinstance(ws.exception(), WebSocketError)

    def begin_turn(self, turn_id: str) -> None:
        """A new turn starts: the replay buffer forgets the previous turn's frames."""
        self._replay.reset(turn_id)

    def abort_socket(self) -> None:
        """Drop the current connection at once (a takeover: it may be half-open)."""
        self._socket.abort()

    def detach(self) -> None:
        """The connection is gone: hold the turns' messages until :meth:`attach`."""
        self._attached.clear()

    async def attach(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        *,
        ready: dict[str, Any],
        turn_id: str | None,
        seq: int,
    ) -> int | None:
        """Continue on a new connection: ``ready``, then every frame after ``seq`` of
        ``turn_id`` that the client missed; return how many, or None if they were no longer
        all kept (the caller stops the turn). Then whatever the turn sends next."""
        async with self._lock:
            self._socket = SocketWriter(ws, transport, send_timeout=self._send_timeout)
            backlog = self._replay.after(turn_id, seq)
            await self._write(protocol.dump(ready), keep=False)
            for text in backlog or []:
                await self._write(text, keep=True)
            self._attached.set()
        return None if backlog is None else len(backlog)

    def close(self) -> None:
        """Write nothing more."""
        self.closed = True

    async def close_socket(self, *, code: int, reason: str = "") -> None:
        """Close the socket with ``code`` (after :meth:`close`), unless it is closed already."""
        if not self._socket.ws.closed:
            await self._socket.ws.close(code=code, message=reason.encode())
