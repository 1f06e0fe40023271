"""Per-connection limits: a token bucket for control messages, the idle timeout, the body timeout.

Both are plain code around a clock; the receive loop below is the one place that reads a
session's socket, so the idle timeout needs no task of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable
from typing import Final

from aiohttp import WSMessage, WSMsgType, web

from voicechat.errors import RateLimited

log = logging.getLogger("voicechat.limits")

IDLE_CLOSE_CODE: Final = 4408  # private-use range; 408 as in HTTP "Request Timeout"
_END_OF_SOCKET: Final = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED})


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; each message takes one. A rate of 0 never
    limits. ``clock`` is injectable so that tests need not wait for refills."""

    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        """Take one token; False (and nothing taken) when the bucket is empty."""
        if self.rate <= 0:
            return True
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def error(self) -> RateLimited:
        return RateLimited(
            f"too many control messages: at most {self.rate:g} a second, "
            f"{self.burst} at once; this one was ignored"
        )


async def receive_until_idle(
    ws: web.WebSocketResponse,
    *,
    idle_timeout: float,
    turn_task: Callable[[], asyncio.Task[None] | None],
) -> AsyncGenerator[WSMessage, None]:
    """Yield the socket's messages until it closes, or until it has been idle for
    ``idle_timeout`` seconds (0: never): no client message and no turn running. An idle
    socket is closed with :data:`IDLE_CLOSE_CODE`. Pings and pongs are not client messages.

    ``turn_task`` returns the session's current turn task; a running turn is not idle, and the
    idle time counts from the moment it ends."""
    loop = asyncio.get_running_loop()
    last_active = loop.time()
    watched: asyncio.Task[None] | None = None

    def turn_ended(_: object) -> None:
        nonlocal last_active, watched
        last_active = loop.time()
        watched = None  # a finished turn's task is not kept until the next turn

    while True:
        timeout: float | None = None
        if idle_timeout > 0:
            task = turn_task()
            busy = task is not None and not task.done()
            if busy and task is not watched:
                assert task is not None
                watched = task
                task.add_done_callback(turn_ended)
            timeout = idle_timeout if busy else last_active + idle_timeout - loop.time()
            if timeout <= 0:
                log.info("idle for %g s: closing", idle_timeout)
                reason = f"idle for {idle_timeout:g} s"
                await ws.close(code=IDLE_CLOSE_CODE, message=reason.encode())
                return
        try:
            message = await ws.receive(timeout=timeout)
        except TimeoutError:
            continue  # the loop decides whether that was idle time
        if message.type in _END_OF_SOCKET:
            return
        last_active = loop.time()
        yield message


async def read_body(request: web.Request, *, within: float) -> bytes:
    """The request's body; 408 when it takes longer than ``within`` seconds to arrive, since a slow
    body would hold its connection (and, on the speech routes, a seat) as long as it trickles."""
    try:
        async with asyncio.timeout(within):
            return await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout(
            text=f"the body did not arrive within {within:g} s", headers={"Connection": "close"}
        ) from None
