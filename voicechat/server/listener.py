"""The listening socket of ``voicechat serve``: what a connection may cost before it is a request.

aiohttp times out nothing until a request's headers are in, and asyncio logs every failed
``accept()`` with a traceback. So here, in front of aiohttp's own protocol:

- one client address holds at most ``max_connections_per_ip`` open connections; the next is
  closed at once (a refusal, counted and logged once per interval), so one address cannot take
  every file descriptor;
- slow headers time out after ``header_timeout`` (aiohttp's keep-alive timer, which also ends a
  connection that sends nothing, is set to it by :func:`~voicechat.server.app.create_app`);
- the loop's error reports are logged once per interval and kind, with a count of the rest: a
  full descriptor table makes asyncio report every retried ``accept()``, tens of thousands a second;
- the soft descriptor limit is raised to the hard one at start (up to 2**20).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

from voicechat.config import Settings
from voicechat.server.metrics import METRICS

log = logging.getLogger("voicechat.server")

LOG_INTERVAL = 10.0  # seconds between two reports of one kind of refusal or loop error


class OncePerInterval:
    """Lets one report of a kind through per interval; the next one through says how many it hid."""

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        self._interval = interval
        self._last: dict[str, float] = {}
        self._hidden: Counter[str] = Counter()

    def admit(self, kind: str) -> int | None:
        """How many reports of ``kind`` were hidden since the last one, if this one may be
        logged; None if it is to be hidden too."""
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval:
            self._hidden[kind] += 1
            return None
        self._last[kind] = now
        return self._hidden.pop(kind, 0)


class AddressCap:
    """Open connections per client address, at most ``limit`` each (0: no cap)."""

    def __init__(self, limit: int, on_refused: Callable[[str], None]) -> None:
        self._limit = limit
        self._open: Counter[str] = Counter()
        self._on_refused = on_refused

    def admit(self, transport: asyncio.BaseTransport) -> str | None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "local"
        if self._limit and self._open[address] >= self._limit:
            self._on_refused(address)
            return None
        self._open[address] += 1
        return address

    def release(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]

    def __len__(self) -> int:
        return sum(self._open.values())


class CappedConnection(asyncio.Protocol):
    """Stands in front of one aiohttp request handler: it is handed the connection only if the
    address is under its cap, and the address's count is given back when the connection ends."""

    __slots__ = ("_address", "_cap", "_handler")

    def __init__(self, handler: asyncio.Protocol, cap: AddressCap) -> None:
        self._handler = handler
        self._cap = cap
        self._address: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._address = self._cap.admit(transport)
        if self._address is None:
            transport.abort()  # type: ignore[attr-defined]
            return
        self._handler.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._address is None:
            return
        self._cap.release(self._address)
        self._address = None
        self._handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._address is not None:
            self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self._handler.eof_received() if self._address is not None else None

    def pause_writing(self) -> None:
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._handler.resume_writing()


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft limit on open files towards ``wanted`` (up to the hard limit); the
    limit it is now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)
            return soft
        soft = target
    return soft


LoopErrorHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]


def loop_error_log(reports: OncePerInterval) -> LoopErrorHandler:
    def report(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        kind = str(context.get("message", "")) + type(context.get("exception")).__name__
        hidden = reports.admit(kind)
        if hidden is None:
            return
        if hidden:
            message = f"{context.get('message')} ({hidden} more like it hidden)"
            context = {**context, "message": message}
        loop.default_exception_handler(context)

    return report


async def serve(app: web.Application, settings: Settings, announce: Callable[[], None]) -> None:
    """Serve ``app`` on ``settings.host:port`` until SIGINT or SIGTERM, then shut down as
    ``aiohttp.web.run_app`` does (sessions told, connections given ``shutdown_timeout``)."""
    raise_fd_limit(1 << 20)  # the hard limit, where it is finite and lower
    loop = asyncio.get_running_loop()
    reports = OncePerInterval()
    loop.set_exception_handler(loop_error_log(reports))
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def refused(address: str) -> None:
        app[METRICS].refused("connections")
        hidden = reports.admit("connection cap " + address)
        if hidden is not None:
            log.warning(
                "refused a connection from %s: %d open, the cap (--max-connections-per-ip)%s",
                address,
                settings.max_connections_per_ip,
                f"; {hidden} more refused since the last report" if hidden else "",
            )

    cap = AddressCap(settings.max_connections_per_ip, refused)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=settings.shutdown_timeout)
    await runner.setup()
    handlers = runner.server
    assert handlers is not None
    listening = await loop.create_server(
        lambda: CappedConnection(handlers(), cap),
        settings.host,
        settings.port,
        reuse_address=True,
        backlog=128,
    )
    try:
        announce()
        await stop.wait()
    finally:
        listening.close()
        await runner.cleanup()
        await listening.wait_closed()
