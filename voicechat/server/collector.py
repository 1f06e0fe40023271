"""The garbage collector and a long-running server: three things keep its pauses short (the
third, releasing cancelled tasks, lives with the turn in :mod:`voicechat.pipeline.cancellation`).

**Freeze the startup heap.** CPython's full collection walks every object the collector tracks.
A server's own code and its libraries (modules, classes, functions: some 40,000 objects here,
more with a Piper voice) never become garbage, yet every full collection walked them again, and
the event loop stood still meanwhile: at 200 speaking sessions those pauses reached 60-70 ms
(docs/benchmarks.md). Once the app has started, :func:`freeze_after_startup` collects once and
moves everything alive to the permanent generation (:func:`gc.freeze`), which collections skip.

**Leave no cycles behind a stopped turn.** That one is the turn's own, in
:mod:`voicechat.pipeline.cancellation`.

**Collect the young generation on a clock.** CPython starts a young collection when allocations
less deallocations pass 700. In a busy server the objects that die are mostly old ones (turns
that end), so that count stays low while the young generation fills with the new turns'
objects: at 200 sessions young collections found 7,000-30,000 objects and took up to 8 ms,
middle and full ones 10-20 ms. :class:`CollectorClock` collects the young generation every
10 ms while sessions are open (once a second otherwise) and the middle one every tenth time; once
a minute it looks at the oldest generation and walks it when it has grown by a quarter since it
was last walked (CPython's own rule, whose trigger the clock would otherwise starve). The
automatic collector stays on for bursts.

Freezing and the clock are the serving process's choice, made by ``voicechat serve`` through
:func:`tune_collector`; ``create_app()`` alone leaves the collector alone (an app in a test
process must not freeze the test's objects). Releasing cancelled tasks is the turn's own.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Sized
from dataclasses import dataclass

from aiohttp import web


async def freeze_after_startup(app: web.Application) -> None:
    """An ``on_startup`` hook: append it after the app's own (its backends are loaded by then)."""
    gc.collect()
    gc.freeze()


@dataclass(frozen=True, slots=True)
class CollectorClock:
    """When to collect what: see the module docstring."""

    interval: float = 0.010  # seconds between collections while sessions are open
    idle_interval: float = 1.0  # ... and while none is
    middle_every: int = 10  # every n-th collection takes the middle generation too
    full_check_every: float = 60.0  # seconds between looks at the oldest generation
    full_growth: float = 0.25  # a full collection when it grew by this share since the last

    def generation(self, tick: int) -> int:
        """The generation to collect at ``tick`` (1, 2, ...): young, or every n-th the middle."""
        return 1 if tick % self.middle_every == 0 else 0

    def full_due(self, oldest: int, settled: int) -> bool:
        """Whether the oldest generation, ``oldest`` objects now and at least ``settled``
        since it was last walked, has grown enough to be walked again: CPython's own rule (a
        quarter more), so that a server with many idle sessions is not walked every time."""
        return oldest > settled * (1 + self.full_growth)

    async def run(self, sessions: Sized) -> None:
        """Collect on this clock until cancelled; ``sessions``: the open ones (only its size
        is read). Does nothing while the collector is disabled."""
        loop = asyncio.get_running_loop()
        tick, next_look, settled = 0, loop.time() + self.full_check_every, None
        while True:
            await asyncio.sleep(self.interval if len(sessions) else self.idle_interval)
            if not gc.isenabled():
                continue
            if loop.time() >= next_look:
                next_look = loop.time() + self.full_check_every
                oldest = len(gc.get_objects(generation=2))
                if settled is not None and self.full_due(oldest, settled):
                    gc.collect(2)
                    settled = len(gc.get_objects(generation=2))
                else:  # the smallest it has been since it was last walked
                    settled = oldest if settled is None else min(settled, oldest)
                continue
            tick += 1
            gc.collect(self.generation(tick))


def tune_collector(
    app: web.Application, sessions: Sized, clock: CollectorClock | None = None
) -> None:
    """What ``voicechat serve`` does: freeze the heap once started, then collect on ``clock``
    for as long as the app runs. ``sessions``: the app's open sessions."""
    app.on_startup.append(freeze_after_startup)  # after the app's own: its backends are loaded
    clock = clock or CollectorClock()

    async def collect_on_the_clock(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(clock.run(sessions), name="collector clock")
        yield
        task.cancel()
        await asyncio.wait([task])

    app.cleanup_ctx.append(collect_on_the_clock)
