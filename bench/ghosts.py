"""Ghost flood (issue 13): 200 connect/reset cycles a second for 10 s against `voicechat serve`,
then a fresh client must get `ready` within 1 s, the server's RSS must be back within 10 % and
its log must have stayed under 1 MB. Prints each figure as a ratio to its limit, with the load.

    .venv/bin/python -m bench.ghosts [--rate 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import CLEAN_ENV, free_port
from tests.rawws import RawWebSocket


def rss_kib(pid: int) -> int:  # /proc reads do not block
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def ghost(port: int) -> None:
    try:
        ws = await RawWebSocket.connect("127.0.0.1", port)
        await ws.until("ready")
        ws.abort()
    except (OSError, AssertionError, asyncio.IncompleteReadError):
        pass


async def time_to_ready(port: int) -> float:
    began = time.perf_counter()
    ws = await RawWebSocket.connect("127.0.0.1", port)
    await asyncio.wait_for(ws.until("ready"), 10)
    elapsed = time.perf_counter() - began
    ws.abort()
    return elapsed


async def main(rate: int, seconds: float) -> int:
    port = free_port()
    sink, log = tempfile.mkstemp(prefix="voicechat-ghosts-", suffix=".log")
    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "voicechat", "serve", "--port", str(port), "--tts", "tone"),
        env=CLEAN_ENV,
        stdout=asyncio.subprocess.PIPE,
        stderr=sink,
    )
    os.close(sink)
    assert server.stdout is not None
    await asyncio.wait_for(server.stdout.readline(), 60)
    try:
        await time_to_ready(port)  # warm
        before = rss_kib(server.pid)
        tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
            task = asyncio.create_task(ghost(port))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=30)
        ready_s = await time_to_ready(port)
        await asyncio.sleep(2)  # let closing sessions go
        after = rss_kib(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), 30)
    log_bytes = await asyncio.to_thread(os.path.getsize, log)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (machine shared with others)")
    print(f"{int(rate * seconds)} ghosts at {rate}/s")
    print(f"fresh client ready: {ready_s:.3f} s = {ready_s / 1.0:.2f} of the 1 s limit")
    growth = after / before - 1
    print(f"RSS {before} -> {after} KiB: {growth:+.1%} = {growth / 0.10:.2f} of the 10 % limit")
    print(f"log {log_bytes} bytes = {log_bytes / 1e6:.3f} of the 1 MB limit ({log})")
    ok = ready_s < 1.0 and growth < 0.10 and log_bytes < 1e6
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.rate, args.seconds)))
