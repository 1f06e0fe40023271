"""bench.timers: the fake backends' timerfd wake-ups come in deadline order, never early, and
survive cancelled sleepers and closed loops. Precision is the bench's to report, not asserted."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from bench import timers


async def _wake_at(deadline: float, woken: list[tuple[float, float]]) -> None:
    await timers.sleep_until(deadline)
    woken.append((deadline, time.perf_counter()))


async def test_sleepers_wake_in_deadline_order_and_never_before_their_deadline() -> None:
    now = time.perf_counter()
    # Asked latest first: each earlier deadline has to re-arm the timer.
    deadlines = [now + 0.05, now + 0.03, now + 0.01, now + 0.03, now + 0.001]
    woken: list[tuple[float, float]] = []
    async with asyncio.TaskGroup() as group:
        for deadline in deadlines:
            group.create_task(_wake_at(deadline, woken))
    assert [deadline for deadline, _ in woken] == sorted(deadlines)
    assert all(at >= deadline for deadline, at in woken)


async def test_a_cancelled_sleeper_does_not_hold_back_the_others() -> None:
    now = time.perf_counter()
    woken: list[tuple[float, float]] = []
    first = asyncio.create_task(_wake_at(now + 0.01, woken))
    second = asyncio.create_task(_wake_at(now + 0.02, woken))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.gather(first, second, return_exceptions=True)
    assert first.cancelled()
    assert [deadline for deadline, _ in woken] == [now + 0.02]


async def test_a_deadline_already_past_returns_at_once() -> None:
    timers_before = dict(timers._TIMERS)
    await timers.sleep_until(time.perf_counter() - 1.0)
    assert timers_before == timers._TIMERS  # no timer was even made


def test_the_timerfd_of_a_closed_loop_is_closed_when_a_new_loop_needs_one() -> None:
    async def sleep_briefly() -> None:
        await timers.sleep_until(time.perf_counter() + 0.001)

    asyncio.run(sleep_briefly())
    open_fds = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        asyncio.run(sleep_briefly())
    assert len(os.listdir("/proc/self/fd")) == open_fds  # one timerfd at a time, not six
    closed = [loop for loop in timers._TIMERS if loop.is_closed()]
    assert len(closed) == 1  # the last run's, until another loop needs timers


async def test_without_timerfd_the_sleep_is_asyncios(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timers, "_LIBC", None)
    deadline = time.perf_counter() + 0.01
    await timers.sleep_until(deadline)
    assert time.perf_counter() >= deadline
    assert timers.timers_for(asyncio.get_running_loop()) is None
