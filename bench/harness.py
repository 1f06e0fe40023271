"""The WebSocket scenarios: a fresh server process per scenario, loopback clients, /proc figures."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.client import hold_idle, speaking
from bench.fakes import BenchTTS, Ideal, ideal_timeline
from bench.server import settings_for
from bench.stats import (
    LagMonitor,
    busy_cpu_seconds,
    cpu_seconds,
    loadavg,
    rss_kib,
    run_delay_s,
    summary_ms,
)
from bench.workload import Workload

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Server:
    pid: int
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ws"


@asynccontextmanager
async def server_process(
    workload: Workload,
    *,
    settings: dict[str, Any] | None = None,
    profile: Path | None = None,
    gc_log: Path | None = None,
    python: str = sys.executable,
) -> AsyncIterator[Server]:
    fields = {k: v for k, v in asdict(workload).items() if k != "tokens"}
    command = [python, "-m", "bench.server", "--workload", json.dumps(fields)]
    for key, value in (settings or {}).items():
        command += ["--setting", f"{key}={json.dumps(value)}"]
    if profile is not None:
        command += ["--profile", str(profile)]
    if gc_log is not None:
        command += ["--gc-log", str(gc_log)]
    command += os.environ.get("BENCH_SERVER_ARGS", "").split()  # experiments: --no-freeze
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None and process.stdin is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if not line.startswith(b"PORT "):
            raise RuntimeError(f"bench server did not start: {line!r}")
        yield Server(pid=process.pid, port=int(line.split()[1]))
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()


async def start_py_spy(pid: int, out: Path) -> asyncio.subprocess.Process:
    spy = Path(sys.executable).with_name("py-spy")
    process = await asyncio.create_subprocess_exec(
        str(spy),
        "record",
        "--pid",
        str(pid),
        "--rate",
        "500",
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(0.5)  # py-spy attaches
    return process


async def server_lag(server: Server) -> dict[str, Any]:
    """The server's event-loop lag since the last call (the bench server's own route)."""
    url = server.url.replace("/ws", "/bench/lag")
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        lag: dict[str, Any] = await response.json()
        return lag


def ideal_for(workload: Workload, settings: dict[str, Any] | None = None) -> Ideal:
    resolved = settings_for(settings or {})
    return ideal_timeline(
        workload,
        BenchTTS(workload),
        first_clause_chars=resolved.first_clause_chars,
        max_chunk_chars=resolved.max_chunk_chars,
        lookahead=resolved.lookahead,
    )


async def speaking_scenario(
    workload: Workload,
    *,
    sessions: int,
    turns: int,
    stagger: float,
    hold: float,
    profile: Path | None = None,
    spy: Path | None = None,
    settings: dict[str, Any] | None = None,
    listen: float = 0.0,
) -> dict[str, Any]:
    """``sessions`` concurrent sessions speaking over real WebSockets to a fresh server;
    ``spy``: record the server with py-spy (collapsed stacks) while it is measured;
    ``settings``: server settings over the bench's (``{"lead": 2.0}`` paces the audio)."""
    ideal = ideal_for(workload, settings)
    gc_log = Path(os.environ.get("BENCH_GC_LOG") or _temp_file("bench-gc-"))
    async with server_process(
        workload, settings=settings, profile=profile, gc_log=gc_log
    ) as server:
        # Warm-up: the TTS renders its speech once per text, and the first turn imports things.
        await speaking(server.url, sessions=1, turns=2, ideal=ideal, stagger=0.0, hold=0.02)
        rss_before, peak = rss_kib(server.pid), 0
        load_before = loadavg()
        sampling = True

        async def sample() -> None:
            nonlocal peak
            while sampling:
                peak = max(peak, rss_kib(server.pid))
                await asyncio.sleep(0.1)

        busy = busy_cpu_seconds()
        await server_lag(server)  # clears the warm-up's samples
        waits = run_delay_s(server.pid), run_delay_s(os.getpid())
        cpu, client_cpu, wall = cpu_seconds(server.pid), time.process_time(), time.perf_counter()
        sampler = asyncio.create_task(sample())
        client_lag = LagMonitor()
        client_monitor = asyncio.create_task(client_lag.run())
        recorder = await start_py_spy(server.pid, spy) if spy is not None else None
        try:
            with collector_off():
                counters = await speaking(
                    server.url,
                    sessions=sessions,
                    turns=turns,
                    ideal=ideal,
                    stagger=stagger,
                    hold=hold,
                    listen=listen,
                )
        finally:
            sampling = False
            await sampler
            client_monitor.cancel()
            if recorder is not None:
                recorder.send_signal(signal.SIGINT)
                await recorder.wait()
        window = (wall, time.perf_counter())
        wall = time.perf_counter() - wall
        server_wait = run_delay_s(server.pid) - waits[0]
        client_wait = run_delay_s(os.getpid()) - waits[1]
        cpu = cpu_seconds(server.pid) - cpu
        client_cpu = time.process_time() - client_cpu
        others = busy_cpu_seconds() - busy - cpu - client_cpu
        lag = await server_lag(server)
    collections = gc_pauses(gc_log, window)
    results = counters.results
    full = [r for r in results if r["kind"] == "full"]
    stopped = [r for r in results if "stop_latency" in r]
    paused = [r for r in results if "pause_latency" in r]
    return {
        "sessions": sessions,
        "settings": settings or {},
        "listen_s": listen,
        "turns": counters.turns,
        "ideal_first_audio_ms": round(ideal.first_audio * 1000, 2),
        "ideal_last_audio_ms": round(ideal.last_audio * 1000, 2),
        "ttfa_ms": summary_ms(r["ttfa"] for r in results),
        "overhead_ms": summary_ms(r["overhead"] for r in results),
        "last_audio_ms": summary_ms(r["last_audio"] for r in full),
        "last_overhead_ms": summary_ms(r["last_overhead"] for r in full),
        "stop_ms": summary_ms(r["stop_latency"] for r in stopped),
        "ahead_at_stop_ms": summary_ms(r["ahead_at_stop"] for r in stopped),
        "pause_ms": summary_ms(r["pause_latency"] for r in paused),
        "frames_after_stopped": counters.frames_after_stopped,
        "frames_while_paused": counters.frames_while_paused,
        "order_errors": counters.order_errors,
        "errors": counters.errors,
        "frames_per_full_turn": sorted({r["frames"] for r in full}),
        "expected_frames_per_full_turn": ideal.frames,
        "server_cpu_ms_per_turn": round(1000 * cpu / max(1, counters.turns), 2),
        "server_cpu_share": round(cpu / wall, 3),
        "client_cpu_share": round(client_cpu / wall, 3),
        "others_cpu_share": round(max(0.0, others) / wall, 3),
        # Time runnable but waiting for a core, per second of the run (main threads).
        "server_cpu_wait_share": round(server_wait / wall, 3),
        "client_cpu_wait_share": round(client_wait / wall, 3),
        "server_loop_lag_ms": lag["loop"],
        "server_gc": collections,
        "backend_timer_lateness_ms": lag["backend_timers"],
        "client_loop_lag_ms": client_lag.take(),
        "server_rss_kib": {"before": rss_before, "peak": peak},
        "rss_kib_per_session": round(max(0, peak - rss_before) / sessions, 1),
        "wall_s": round(wall, 2),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }


@contextmanager
def collector_off() -> Iterator[None]:
    """The clients' garbage collector off while they measure, as ``timeit`` does: a pause of
    theirs would delay the arrival they time and count as the server's overhead. They make
    little cyclic garbage; it is collected afterwards."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def _temp_file(prefix: str) -> str:
    handle, name = tempfile.mkstemp(prefix=prefix)
    os.close(handle)
    return name


def gc_pauses(log: Path, window: tuple[float, float]) -> dict[str, Any]:
    """The server's garbage collections that started within ``window``, by generation:
    how many, their total and their longest pause (ms), and the objects they freed."""
    entries = json.loads(log.read_text())
    log.unlink()
    out: dict[str, Any] = {}
    for generation in (0, 1, 2):
        took = [
            (t, freed)
            for g, at, t, freed in entries
            if g == generation and window[0] <= at <= window[1]
        ]
        out[str(generation)] = {
            "n": len(took),
            "total_ms": round(1000 * sum(t for t, _ in took), 1),
            "max_ms": round(1000 * max((t for t, _ in took), default=0.0), 2),
            "freed": sum(freed for _, freed in took),
        }
    return out


async def idle_scenario(workload: Workload, *, sessions: int) -> dict[str, Any]:
    """``sessions`` idle WebSockets held open on a fresh server: memory per session."""
    async with server_process(workload) as server:

        async def nothing() -> dict[str, Any]:
            return {}

        await hold_idle(server.url, sessions=32, on_connected=nothing)  # warm-up
        await asyncio.sleep(0.5)
        rss_before = rss_kib(server.pid)

        async def measure() -> dict[str, Any]:
            await asyncio.sleep(1.0)  # let the last handshakes settle
            rss = rss_kib(server.pid)
            health_url = server.url.replace("/ws", "/healthz")
            async with aiohttp.ClientSession() as http, http.get(health_url) as response:
                health = await response.json()
            return {
                "server_sessions": health["sessions"],
                "server_rss_kib": {"before": rss_before, "held": rss},
                "rss_kib_per_session": round((rss - rss_before) / sessions, 1),
            }

        started = time.perf_counter()
        result = await hold_idle(server.url, sessions=sessions, on_connected=measure)
    return {
        "sessions": sessions,
        "wall_s": round(time.perf_counter() - started, 2),
        "loadavg": loadavg(),
    } | result
