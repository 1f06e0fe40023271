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
"""

from __future__ import annotations

import gc

from aiohttp import web


async def freeze_after_startup(app: web.Application) -> None:
    """An ``on_startup`` hook: append it after the app's own (its backends are loaded by then)."""
    gc.collect()
    gc.freeze()
