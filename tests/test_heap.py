"""The garbage collector: `voicechat serve` freezes what is alive once the app has started and
collects on a clock, later garbage is collected, and a turn that is over (stopped mid-synthesis
included) is freed at once, without a collection."""

from __future__ import annotations

import asyncio
import gc
import itertools
import traceback
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import ClientFactory, ScriptedLLM, TrackingTTS, VoiceClient, eventually
from tests.conftest import test_settings as make_settings
from voicechat import cli
from voicechat.pipeline.cancellation import release_cancellation
from voicechat.server.app import create_app
from voicechat.server.collector import CollectorClock, freeze_after_startup, tune_collector
from voicechat.server.keys import SESSIONS
from voicechat.tts.tone import ToneTTS


class Cycle:
    def __init__(self) -> None:
        self.me = self


async def test_after_startup_the_live_objects_are_frozen_and_later_cycles_collected(
    aiohttp_client: Any,
) -> None:
    app = create_app(make_settings(), tts=ToneTTS())
    app.on_startup.append(freeze_after_startup)
    try:
        http = await aiohttp_client(app)
        assert gc.get_freeze_count() > 10_000  # modules, classes, the app, its backends
        client = VoiceClient(await http.ws_connect("/ws"))
        assert (await client.next_event())["action"] == "ready"
        events = await client.turn("Say something.")
        assert events[-1]["action"] == "done"
        later = Cycle()
        gone = weakref.ref(later)
        del later
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()


def test_serve_freezes_after_the_apps_own_startup_and_collects_on_the_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: list[web.Application] = []

    async def serve(app: web.Application, settings: object, announce: object) -> None:
        served.append(app)

    monkeypatch.setattr(cli, "serve", serve)
    assert cli.main(["serve", "--tts", "tone", "--llm", "replay"]) == 0
    (app,) = served
    assert list(app.on_startup)[-1] is freeze_after_startup
    assert [ctx.__name__ for ctx in app.cleanup_ctx][-1] == "collect_on_the_clock"


@pytest.mark.parametrize(("tick", "generation"), [(1, 0), (9, 0), (10, 1), (11, 0), (20, 1)])
def test_the_clock_collects_the_young_generation_and_every_tenth_time_the_middle(
    tick: int, generation: int
) -> None:
    assert CollectorClock().generation(tick) == generation


@pytest.mark.parametrize(
    ("oldest", "settled", "due"), [(125, 100, False), (126, 100, True), (90, 100, False)]
)
def test_a_full_collection_is_due_when_the_oldest_generation_grew_by_a_quarter(
    oldest: int, settled: int, due: bool
) -> None:
    assert CollectorClock().full_due(oldest, settled) is due


async def test_the_clock_walks_the_oldest_generation_only_once_it_has_grown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The sizes it finds at each look, and after each full collection (90, then 80 for good).
    sizes = itertools.chain([100, 110, 95, 120, 90, 100, 113], itertools.repeat(80))
    monkeypatch.setattr(gc, "get_objects", lambda generation=None: [None] * next(sizes))
    clock = CollectorClock(interval=0.001, full_check_every=0.0, middle_every=1000)
    collected = await _collections_by(clock, sessions=[object()], until=lambda c: len(c) == 2)
    # 100 settles it; 110 is not a quarter more; 95 lowers it; 120 > 95 * 1.25: walked, 90 left;
    # 100 is not due; 113 > 90 * 1.25: walked again, 80 left, and 80 from then on is not due.
    assert collected == [2, 2]


async def test_the_clock_runs_with_the_app_and_stops_with_it(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    collected: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: collected.append(generation) or 0)
    app = create_app(make_settings(), tts=ToneTTS())
    clock = CollectorClock(interval=0.001, idle_interval=0.001, middle_every=3)
    tune_collector(app, app[SESSIONS], clock)
    try:
        http = await aiohttp_client(app)
        await eventually(lambda: 1 in collected and 0 in collected)
        assert collected.count(0) > collected.count(1)
        await http.close()
        assert not [task for task in asyncio.all_tasks() if task.get_name() == "collector clock"]
    finally:
        gc.unfreeze()


async def _collections_by(
    clock: CollectorClock,
    sessions: list[object],
    until: Callable[[list[int]], bool] | None = None,
) -> list[int]:
    """What ``clock`` collects in 20 ms (or ``until`` it has collected enough) with
    ``sessions`` open."""
    collected: list[int] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gc, "collect", lambda generation=2: collected.append(generation) or 0)
        running = asyncio.create_task(clock.run(sessions))
        if until is None:
            await asyncio.sleep(0.02)
        else:
            await eventually(lambda: until(collected))
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    return collected


async def test_the_clock_is_fast_only_while_sessions_are_open() -> None:
    clock = CollectorClock(interval=0.001, idle_interval=3600.0)
    assert await _collections_by(clock, sessions=[]) == []  # asleep for an hour
    assert 0 in await _collections_by(clock, sessions=[object()])


async def test_the_clock_leaves_a_disabled_collector_alone() -> None:
    gc.disable()
    try:
        collected = await _collections_by(CollectorClock(interval=0.001), sessions=[object()])
    finally:
        gc.enable()
    assert collected == []


async def test_a_finished_or_stopped_turn_is_freed_without_the_collector(
    voice_client: ClientFactory,
) -> None:
    client, http = await voice_client(llm=ScriptedLLM(["One. ", "Two. ", "Three."]))
    (session,) = http.server.app[SESSIONS]
    gc.collect()
    gc.disable()
    try:
        assert (await client.turn("first"))[-1]["action"] == "done"
        finished = weakref.ref(session._turn)  # noqa: SLF001
        await client.start("second")
        await client.until("audio")
        stopped = weakref.ref(session._turn)  # noqa: SLF001
        await client.send("stop")
        await client.until("stopped")
        assert (await client.turn("third"))[-1]["action"] == "done"
        assert finished() is None and stopped() is None
    finally:
        gc.enable()


async def test_a_turn_stopped_mid_synthesis_is_freed_without_the_collector(
    voice_client: ClientFactory,
) -> None:
    # The LLM waits after three sentences and the first sentence's synthesis after its first
    # piece: at the stop every stage and synthesis task is cancelled mid-wait.
    llm = ScriptedLLM(["One. ", "Two. ", "Three. ", "Four."], hold_after=3)
    tts = TrackingTTS(ToneTTS(), gate_after_first_piece=asyncio.Event())
    client, http = await voice_client(llm=llm, tts=tts)
    (session,) = http.server.app[SESSIONS]
    gc.collect()
    gc.disable()
    try:
        await client.start("speak")
        await client.until("audio")
        await eventually(lambda: tts.started == 3)
        turn = weakref.ref(session._turn)  # noqa: SLF001
        running = [task for task in asyncio.all_tasks() if "turn t1" in task.get_name()]
        stages = sorted(task.get_name().split("turn t1")[1] for task in running)
        assert stages == ["", " llm", " send", " tts", " tts 0"]  # the other syntheses are over
        tasks = [weakref.ref(task) for task in running]
        del running
        await client.send("stop")
        await client.until("stopped")
        await eventually(lambda: tts.running == 0)
        await eventually(lambda: turn() is None and all(task() is None for task in tasks))
    finally:
        gc.enable()


async def test_release_cancellation_drops_a_cancelled_tasks_tracebacks_and_nothing_else() -> None:
    async def fails() -> None:
        raise ValueError("kept")

    async def waits() -> None:
        await asyncio.Event().wait()

    failed = asyncio.create_task(fails())
    cancelled = asyncio.create_task(waits())
    for task in (failed, cancelled):
        task.add_done_callback(release_cancellation)
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.wait([failed, cancelled])
    await asyncio.sleep(0)  # done callbacks run
    error = failed.exception()
    assert isinstance(error, ValueError) and error.__traceback__ is not None  # left as it was
    assert cancelled.cancelled()
    with pytest.raises(asyncio.CancelledError) as raised:
        cancelled.result()
    # The task's own error, whose traceback held the frames of `waits`, was taken and dropped:
    # this one is new, raised here.
    frames = [entry.name for entry in traceback.extract_tb(raised.value.__traceback__)]
    assert "waits" not in frames
