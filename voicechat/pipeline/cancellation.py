"""Leave no cycles behind a stopped turn.

A cancelled task keeps the ``CancelledError`` that ended it, whose traceback keeps every frame the
error passed through, with their locals: the turn's ``TaskGroup``, a ``SilenceLimit``, the turn
itself, and through them the task again. Only the collector frees such a cycle, and it frees all
that piled up in one pause: at 200 sessions young collections freeing thousands of objects took
8-11 ms. :func:`release_cancellation`, a done callback on the tasks a turn runs, drops the error's
tracebacks, and all of it is freed by reference counting as soon as the task ends. (The rest of
the collector's tuning is the server's: :mod:`voicechat.server.collector`.)
"""

from __future__ import annotations

import asyncio
from typing import Any


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
