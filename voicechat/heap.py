"""The garbage collector and a long-running server.

CPython's full collection walks every object the collector tracks. A server's own code and its
libraries (modules, classes, functions: some 40,000 objects here, more with a Piper voice) never
become garbage, yet every full collection walks them again, and the event loop stands still
meanwhile: at 200 speaking sessions those pauses reached 60-70 ms, and every turn in flight waited
them out (README, Benchmarks). Once the app has started, :func:`freeze_after_startup` collects
once and moves everything alive to the permanent generation (:func:`gc.freeze`), which full
collections skip. What sessions and turns allocate later is collected as before.

It is the serving process's choice, made by ``voicechat serve``; ``create_app()`` alone leaves
the collector alone (an app in a test process must not freeze the test's objects).

What a stopped turn leaves behind is the other half. A cancelled task keeps the
``CancelledError`` that ended it, whose traceback keeps every frame the error passed through,
with their locals: the turn's ``TaskGroup``, a ``SilenceLimit``, the turn itself, and through
them the task again. Only the collector frees such a cycle, and it frees all that piled up in
one pause: at 200 sessions those pauses (young collections freeing thousands of objects in
8-11 ms) were the tail of the first-audio times. :func:`release_cancellation`, a done callback
on the tasks a turn runs, drops the error's tracebacks, and all of it is freed by reference
counting as soon as the task ends.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from aiohttp import web


async def freeze_after_startup(app: web.Application) -> None:
    """An ``on_startup`` hook: append it after the app's own (its backends are loaded by then)."""
    gc.collect()
    gc.freeze()


def release_cancellation(task: asyncio.Task[Any]) -> None:
    """A done callback: if ``task`` was cancelled, take its ``CancelledError`` (asyncio hands it
    over once) and drop the tracebacks of that error and of the errors it chains to."""
    if not task.cancelled():
        return
    try:
        task.result()
    except asyncio.CancelledError as exc:
        error: BaseException | None = exc
        seen: set[int] = set()
        while error is not None and id(error) not in seen:
            seen.add(id(error))
            error.__traceback__ = None
            error = error.__context__
