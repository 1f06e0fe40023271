"""A limit on how long one task may wait on a backend, with one timer for a whole stream.

``asyncio.timeout()`` around every wait arms a timer and cancels it again; a cancelled timer
stays in the event loop's heap until it is purged, and so also in the garbage collector's young
generation. For the few dozen audio pieces of every turn, that was measurable at 200 sessions
(docs/benchmarks.md). :class:`SilenceLimit` arms one timer; when it fires for a wait that is
already over, it moves to the deadline of the wait in progress, if any, or lets the next wait
arm it again. The cancellation is asyncio's own: the waiting task is cancelled and the
``CancelledError`` becomes ``TimeoutError`` unless someone else cancelled the task too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from types import TracebackType
from typing import TypeVar

T = TypeVar("T")


class SilenceLimit:
    """Fail with ``TimeoutError`` any :meth:`wait` that lasts longer than ``seconds``. Time
    between waits does not count. Use it in one task, as a context manager."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("SilenceLimit must be used inside a task")
        self._task = task
        self._since: float | None = None  # loop time at which the wait in progress began
        self._timer: asyncio.TimerHandle | None = None
        self._expired = False

    def __enter__(self) -> SilenceLimit:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable``; raise ``TimeoutError`` if that takes longer than the limit."""
        task = self._task
        cancelling = task.cancelling()
        self._since = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_at(self._since + self._seconds, self._check)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if self._expired:
                self._expired = False
                if task.uncancel() <= cancelling:
                    raise TimeoutError from None
            raise
        finally:
            self._since = None

    def _check(self) -> None:
        self._timer = None
        if self._since is None:
            return  # no wait in progress: the next one arms the timer
        deadline = self._since + self._seconds
        if self._loop.time() >= deadline:
            self._expired = True
            self._task.cancel()
        else:
            self._timer = self._loop.call_at(deadline, self._check)
