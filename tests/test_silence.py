"""SilenceLimit: a wait that lasts too long fails; time between waits never counts."""

from __future__ import annotations

import asyncio

import pytest

from voicechat.pipeline.silence import SilenceLimit


async def test_a_wait_longer_than_the_limit_raises_timeout_error() -> None:
    never = asyncio.Event()
    with SilenceLimit(0.05) as silence, pytest.raises(TimeoutError):
        await silence.wait(never.wait())
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_time_between_waits_does_not_count() -> None:
    loop = asyncio.get_running_loop()
    with SilenceLimit(0.05) as silence:
        assert await silence.wait(asyncio.sleep(0, "first")) == "first"
        await asyncio.sleep(0.2)  # the timer fires meanwhile, with no wait in progress
        assert await silence.wait(asyncio.sleep(0, "second")) == "second"
        outside = loop.time() + 0.2
        while loop.time() < outside:  # many quick waits, longer than the limit in all
            await silence.wait(asyncio.sleep(0))


async def test_a_wait_that_began_after_the_timer_was_armed_gets_its_whole_limit() -> None:
    loop = asyncio.get_running_loop()
    limit = 1.0
    with SilenceLimit(limit) as silence:
        armed_at = loop.time()
        await silence.wait(asyncio.sleep(0))  # arms the timer for armed_at + limit
        await asyncio.sleep(armed_at + 0.9 * limit - loop.time())
        # This wait spans the moment the timer fires; its own deadline is much later.
        assert await silence.wait(asyncio.sleep(0.5 * limit, "late")) == "late"


async def test_a_cancel_from_outside_stays_a_cancel() -> None:
    started = asyncio.Event()

    async def waiter() -> None:
        with SilenceLimit(10) as silence:
            started.set()
            await silence.wait(asyncio.Event().wait())

    task = asyncio.create_task(waiter())
    await started.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_leaving_it_disarms_the_timer() -> None:
    with SilenceLimit(0.05) as silence:
        await silence.wait(asyncio.sleep(0))
    await asyncio.sleep(0.1)  # the timer would have fired here; nothing is cancelled
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
