"""The in-process side-by-side runs: the same sessions driven the same way through voicechat's
``Session`` (``bench.inprocess``) and through a Pipecat pipeline (``bench.pipecat_bench``).

A system is wrapped in a :class:`Pipe` that turns its output into events ``(kind, time, key)`` on
one queue: ``audio`` (key: the turn it belongs to), ``end`` (the turn finished by itself) and
``stopped`` (the interruption went through to the output). Standard library only.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.stats import busy_cpu_seconds, loadavg, rss_kib, summary_ms

Event = tuple[str, float, str | None]


class Pipe(Protocol):
    events: asyncio.Queue[Event]

    async def start_turn(self) -> None: ...

    async def interrupt(self) -> None: ...


@dataclass
class Tally:
    late_frames: int = 0  # audio of an interrupted turn that reached the output after `stopped`
    turns: int = 0
    ttfa: list[float] = field(default_factory=list)
    last_audio: list[float] = field(default_factory=list)
    stop: list[float] = field(default_factory=list)


async def drive(pipe: Pipe, *, turns: int, delay: float, tally: Tally) -> None:
    """Alternate full turns and turns interrupted two frames after the first audio."""
    dead: set[str | None] = set()

    async def next_event() -> Event:
        kind, at, key = await asyncio.wait_for(pipe.events.get(), 60)
        if key in dead and kind != "stopped":
            tally.late_frames += 1
        return kind, at, key

    await asyncio.sleep(delay)
    for index in range(turns):
        started = time.perf_counter()
        await pipe.start_turn()
        frames, key = 0, None
        while True:
            kind, at, event_key = await next_event()
            if kind == "audio" and event_key not in dead:
                if frames == 0:
                    tally.ttfa.append(at - started)
                frames, key, last = frames + 1, event_key, at
            if kind == "end" or (index % 2 == 1 and frames == 3):
                break
        if kind == "end":
            tally.last_audio.append(last - started)
        else:
            asked = time.perf_counter()
            await pipe.interrupt()
            while (event := await next_event())[0] != "stopped":
                pass
            tally.stop.append(event[1] - asked)
            dead.add(key)
        tally.turns += 1
    await asyncio.sleep(0.2)  # whatever is still on its way arrives now, and is counted
    while not pipe.events.empty():
        await next_event()


async def run_levels(
    levels: list[int],
    *,
    turns_for: Callable[[int], int],
    stagger: float,
    ideal_first: float,
    make_pipe: Callable[[], Awaitable[Pipe]],
    run: Callable[[list[Pipe], Coroutine[Any, Any, None]], Coroutine[Any, Any, None]],
) -> list[dict[str, Any]]:
    """For each level: ``level`` pipes, each driven by :func:`drive`; CPU and memory figures."""
    out = []
    for level in levels:
        pipes = [await make_pipe() for _ in range(level)]
        out.append(
            await run_level(
                pipes, turns=turns_for(level), stagger=stagger, ideal_first=ideal_first, run=run
            )
        )
        print(f"  {level} sessions done", file=sys.stderr, flush=True)
    return out


async def run_level(
    pipes: list[Pipe],
    *,
    turns: int,
    stagger: float,
    ideal_first: float,
    run: Callable[[list[Pipe], Coroutine[Any, Any, None]], Coroutine[Any, Any, None]],
) -> dict[str, Any]:
    rng = random.Random(6)
    tally = Tally()
    peak = rss_before = rss_kib_self()
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, rss_kib_self())
            await asyncio.sleep(0.05)

    async def work() -> None:
        nonlocal sampling
        async with asyncio.TaskGroup() as group:
            for pipe in pipes:
                delay = rng.uniform(0, stagger) if len(pipes) > 1 else 0.0
                group.create_task(drive(pipe, turns=turns, delay=delay, tally=tally))
        sampling = False

    busy, cpu, wall = busy_cpu_seconds(), time.process_time(), time.perf_counter()
    async with asyncio.TaskGroup() as group:
        group.create_task(sample())
        group.create_task(run(pipes, work()))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    others = busy_cpu_seconds() - busy - cpu
    return {
        "sessions": len(pipes),
        "turns": tally.turns,
        "ttfa_ms": summary_ms(tally.ttfa),
        "overhead_ms": summary_ms(t - ideal_first for t in tally.ttfa),
        "last_audio_ms": summary_ms(tally.last_audio),
        "stop_ms": summary_ms(tally.stop),
        "late_frames": tally.late_frames,
        "cpu_ms_per_turn": round(1000 * cpu / max(1, tally.turns), 2),
        "cpu_share": round(cpu / wall, 3),
        "rss_kib_per_session": round((peak - rss_before) / len(pipes), 1),
        "others_cpu_share": round(max(0.0, others) / wall, 3),
        "loadavg_after": loadavg(),
    }


def turns_for(level: int, base: int) -> int:
    """Turns per session: ``base`` alone, fewer when many sessions share the run (even counts)."""
    return max(4, min(base, 800 // level)) // 2 * 2


def freeze_heap() -> None:
    """After the warm-up, what ``voicechat serve`` does once started
    (voicechat.server.collector): collect, then leave everything alive out of later
    collections. Both systems get it."""
    import gc

    gc.collect()
    gc.freeze()


def rss_kib_self() -> int:
    import os

    return rss_kib(os.getpid())


def emit(result: dict[str, Any]) -> None:
    """The one line of JSON a side-by-side run prints on stdout."""
    print(json.dumps(result), flush=True)
