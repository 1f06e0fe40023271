"""Wake-ups at exact deadlines for the fake backends, on Linux's ``timerfd``.

asyncio waits in ``epoll_wait``, whose timeout is whole milliseconds, and rounds every wait up:
a fake TTS asked for 100 ms of latency answers after 100.0–101.0 ms even on an idle loop, and a
token due at 340 ms comes up to 1 ms late. A real backend's answer arrives on a socket, which
wakes the loop as soon as it is readable. So the fakes wake on a socket-like event too: one
``timerfd`` per event loop, armed (in nanoseconds, on ``CLOCK_MONOTONIC``, the clock of
``time.perf_counter()``) at the earliest pending deadline and watched by the loop like any file.
A busy loop still wakes the fakes late, as it would be late to read a real backend: that
lateness is the server's and stays in the figures.

Standard library only (the Pipecat bench imports it from its own virtual environment). Where
``timerfd`` is missing (not Linux), the fakes fall back to ``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import heapq
import itertools
import math
import os
import time

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.timerfd_create  # noqa: B018 - only whether the symbol exists
        libc.timerfd_settime  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


class DeadlineTimers:
    """Futures that complete at absolute ``time.perf_counter()`` deadlines, for one loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, libc: ctypes.CDLL) -> None:
        self._loop = loop
        self._libc = libc
        self._fd: int = libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self._pending: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()  # ties: first asked, first woken
        self._armed_for: float | None = None
        self._value = _Itimerspec()  # reused: the fakes arm the timer thousands of times a second
        self._value_ref = ctypes.byref(self._value)
        loop.add_reader(self._fd, self._fire)

    def wait_until(self, deadline: float) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self._loop.create_future()
        heapq.heappush(self._pending, (deadline, next(self._order), future))
        if self._armed_for is None or deadline < self._armed_for:
            self._arm(deadline)
        return future

    @property
    def fd(self) -> int:
        return self._fd

    def _arm(self, deadline: float) -> None:
        seconds = int(deadline)
        value = self._value.it_value  # it_interval stays 0: one shot
        value.tv_sec = seconds
        value.tv_nsec = min(999_999_999, max(1, math.ceil((deadline - seconds) * 1e9)))
        if self._libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, self._value_ref, None):
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")
        self._armed_for = deadline

    def _fire(self) -> None:
        # BlockingIOError: re-armed for a later deadline after it had expired: nothing due yet
        with contextlib.suppress(BlockingIOError):
            os.read(self._fd, 8)
        self._armed_for = None
        now = time.perf_counter()
        pending = self._pending
        while pending and pending[0][0] <= now:
            _, _, future = heapq.heappop(pending)
            if not future.done():  # a cancelled sleeper's future is done
                future.set_result(None)
        if pending:
            self._arm(pending[0][0])


_TIMERS: dict[asyncio.AbstractEventLoop, DeadlineTimers] = {}


def timers_for(loop: asyncio.AbstractEventLoop) -> DeadlineTimers | None:
    """The loop's timers (made on first use; those of closed loops are closed then), or None
    without ``timerfd``."""
    if _LIBC is None:
        return None
    timers = _TIMERS.get(loop)
    if timers is None:  # not on every sleep: only when a new loop needs its timers
        for closed in [other for other in _TIMERS if other.is_closed()]:
            os.close(_TIMERS.pop(closed).fd)
        timers = _TIMERS[loop] = DeadlineTimers(loop, _LIBC)
    return timers


async def sleep_until(deadline: float) -> None:
    """Sleep to the absolute ``time.perf_counter()`` ``deadline``, to the microsecond where the
    loop is free (timerfd), else as ``asyncio.sleep`` does."""
    delay = deadline - time.perf_counter()
    if delay <= 0:
        return
    timers = timers_for(asyncio.get_running_loop())
    if timers is None:
        await asyncio.sleep(delay)
    else:
        await timers.wait_until(deadline)
