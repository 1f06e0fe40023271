"""The server under test, in its own process: ``create_app()`` on a loopback ``TCPSite`` with the
bench backends. Prints ``PORT <n>`` once listening and serves until its stdin closes.

    python -m bench.server --workload '{"ttft": 0.2, ...}' [--profile out.txt] [--setting k=v]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.fakes import BenchLLM, BenchTTS
from bench.stats import LagMonitor, summary_ms
from bench.workload import Workload
from voicechat.config import Settings
from voicechat.server.app import create_app
from voicechat.server.collector import tune_collector
from voicechat.server.keys import SESSIONS
from voicechat.server.listener import raise_fd_limit

BENCH_SETTINGS: dict[str, Any] = {
    "llm": "replay",
    "tts": "tone",
    "lead": 0.0,
    "max_sessions": 4096,
}


def settings_for(overrides: dict[str, Any]) -> Settings:
    # Pacing to the listener's clock (lead) is off unless a scenario turns it on: the tables
    # measure the pipeline against its ideal, which knows nothing of real-time delivery.
    # The session cap (100 by default) is lifted: the bench holds 200 speaking and 1,000 idle.
    return Settings(**{**BENCH_SETTINGS, **overrides})


def track_gc(out: Path) -> None:
    """Record every garbage collection: (generation, start on ``time.perf_counter()``, which is
    the system's monotonic clock, seconds, objects freed); written at exit."""
    import atexit
    import gc
    import time

    pauses: list[tuple[int, float, float, int]] = []
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            took = time.perf_counter() - started[0]
            pauses.append((info["generation"], started[0], took, info["collected"]))

    gc.callbacks.append(callback)
    atexit.register(lambda: out.write_text(json.dumps(pauses)))


async def serve(workload: Workload, settings: Settings, *, freeze: bool = True) -> None:
    lateness: list[float] = []  # of every timed wake-up of the fake backends
    tts = BenchTTS(workload, lateness)
    app = create_app(settings, llm=BenchLLM(workload, lateness), tts=tts)
    lag = LagMonitor()

    async def lag_handler(request: web.Request) -> web.Response:
        timers = summary_ms(lateness)
        lateness.clear()
        return web.json_response({"loop": lag.take(), "backend_timers": timers})

    app.router.add_get("/bench/lag", lag_handler)  # the bench's own route, not the server's
    if freeze:
        tune_collector(app, app[SESSIONS])  # as `voicechat serve` does
    monitor = asyncio.create_task(lag.run())
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=4096).start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, sys.stdin.read)  # returns when the parent closes stdin
    finally:
        monitor.cancel()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", default="{}", help="Workload fields as JSON")
    parser.add_argument("--setting", action="append", default=[], help="Settings field=JSON")
    parser.add_argument("--profile", type=Path, help="write a pyinstrument profile here")
    parser.add_argument("--log", type=Path, help="server log file (default: stderr)")
    parser.add_argument("--gc-log", type=Path, help="write garbage collection pauses here")
    parser.add_argument(
        "--no-freeze", action="store_true", help="leave the collector alone (no freeze, no clock)"
    )
    args = parser.parse_args()
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.setting)}
    settings = settings_for(overrides)
    logging.basicConfig(
        level=settings.log_level,
        filename=args.log,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    raise_fd_limit(65536)
    if args.gc_log is not None:
        track_gc(args.gc_log)
    workload = Workload(**json.loads(args.workload))
    if args.profile is None:
        asyncio.run(serve(workload, settings, freeze=not args.no_freeze))
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    with profiler:
        asyncio.run(serve(workload, settings, freeze=not args.no_freeze))
    args.profile.write_text(profiler.output_text(unicode=True, show_all=False))
    args.profile.with_suffix(".html").write_text(profiler.output_html())


if __name__ == "__main__":
    main()
