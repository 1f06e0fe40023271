"""Percentiles, process figures from /proc, and a description of the machine (standard library)."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q`` percentile (0-100) by nearest rank, or None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(values_s: Iterable[float]) -> dict[str, Any]:
    """p50/p90/p99/max in milliseconds of values in seconds, and their count."""
    values = [v * 1000 for v in values_s]
    out: dict[str, Any] = {"n": len(values)}
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100)):
        value = percentile(values, q)
        out[name] = None if value is None else round(value, 2)
    return out


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
    }


def busy_cpu_seconds() -> float:
    """CPU seconds all processes on the machine have used so far (from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / TICKS


def run_delay_s(pid: int) -> float:
    """Seconds the main thread of ``pid`` has spent runnable but waiting for a CPU
    (``/proc/<pid>/schedstat``, second field): the cost of sharing the cores."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


class LagMonitor:
    """How late an event loop runs a callback: a task that sleeps ``period`` and records how much
    longer than that it slept, and how much of that the thread spent waiting for a CPU (taken by
    other processes) rather than running. Run ``run()`` as a task; ``take()`` returns and clears
    the figures."""

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.samples: list[float] = []
        self.own: list[float] = []  # the lag less the time spent waiting for a CPU

    async def run(self) -> None:
        import asyncio
        import time

        schedstat = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        try:
            while True:
                before, waited = time.perf_counter(), _waited(schedstat)
                await asyncio.sleep(self.period)
                lag = time.perf_counter() - before - self.period
                self.samples.append(lag)
                self.own.append(max(0.0, lag - (_waited(schedstat) - waited)))
        finally:
            os.close(schedstat)

    def take(self) -> dict[str, Any]:
        samples, self.samples = self.samples, []
        own, self.own = self.own, []
        return summary_ms(samples) | {"own": summary_ms(own)}


def _waited(fd: int) -> float:
    return int(os.pread(fd, 128, 0).split()[1]) / 1e9
