"""``python -m bench``: run every scenario, print the tables, write the JSON.

python -m bench                     # the full run (make bench): several minutes
python -m bench --quick             # the smoke run of make test: well under a minute
python -m bench --only websocket    # one part (repeatable): idle, websocket, pacing,
                                    # inprocess, pipecat, real, chunker, local-llm
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.harness import ROOT, idle_scenario, speaking_scenario
from bench.report import render
from bench.stats import loadavg, machine
from bench.workload import Workload
from voicechat.server.listener import raise_fd_limit

PARTS = ("idle", "websocket", "pacing", "inprocess", "pipecat", "real", "chunker", "local-llm")
LEADS = (0.0, 2.0)  # pacing off (the other tables), and the server's default
LISTEN = 1.0  # pacing runs: an interrupted turn is stopped 1 s after its resume
PIPECAT_PYTHON = ROOT / "bench" / ".venv-pipecat" / "bin" / "python"
NOISY = 0.25  # other processes using more than this share of a core make a run worth redoing


@dataclass(frozen=True, slots=True)
class Plan:
    idle: int
    levels: tuple[tuple[int, int], ...]  # (sessions, turns per session)
    side_levels: str
    side_turns: int
    attempts: int  # runs of a scenario when other processes load the machine
    stagger: float = 2.0
    hold: float = 0.15
    pacing: tuple[tuple[int, int], ...] = ((1, 2),)  # (sessions, turns) run with each lead


FULL = Plan(
    idle=1000,
    levels=((1, 20), (50, 8), (200, 4)),
    side_levels="1,50,200",
    side_turns=20,
    attempts=3,
    pacing=((1, 8), (50, 2)),
)
QUICK = Plan(
    idle=100,
    levels=((1, 4), (20, 2)),
    side_levels="1,20",
    side_turns=4,
    attempts=1,
    stagger=0.5,
    hold=0.05,
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def websocket_runs(workload: Workload, plan: Plan, spy: Path | None) -> list[dict[str, Any]]:
    runs = []
    busiest = max(sessions for sessions, _ in plan.levels)
    for sessions, turns in plan.levels:
        attempts: list[dict[str, Any]] = []
        for attempt in range(plan.attempts):
            profile = spy if sessions == busiest else None
            result = await speaking_scenario(
                workload,
                sessions=sessions,
                turns=turns,
                stagger=plan.stagger,
                hold=plan.hold,
                spy=profile,
            )
            attempts.append(result)
            log(
                f"  websocket {sessions} sessions, attempt {attempt + 1}: overhead p50/p99 "
                f"{result['overhead_ms']['p50']}/{result['overhead_ms']['p99']} ms, stop p99 "
                f"{result['stop_ms']['p99']} ms, other load {result['others_cpu_share']}"
            )
            if result["others_cpu_share"] <= NOISY:
                break
        best = min(attempts, key=lambda r: r["others_cpu_share"])
        best["attempts_others_cpu_share"] = [a["others_cpu_share"] for a in attempts]
        runs.append(best)
    return runs


async def pacing_runs(workload: Workload, plan: Plan) -> list[dict[str, Any]]:
    """The same sessions with pacing off and at the default lead, one after the other."""
    runs = []
    for sessions, turns in plan.pacing:
        for lead in LEADS:
            result = await speaking_scenario(
                workload,
                sessions=sessions,
                turns=turns,
                stagger=plan.stagger,
                hold=plan.hold,
                settings={"lead": lead},
                listen=LISTEN,
            )
            log(
                f"  pacing {sessions} sessions, lead {lead}: time to first audio p50 "
                f"{result['ttfa_ms']['p50']} ms, ahead at stop p50 "
                f"{result['ahead_at_stop_ms']['p50']} ms"
            )
            runs.append(result)
    return runs


def side_by_side(python: Path, module: str, workload: Workload, plan: Plan) -> dict[str, Any]:
    fields = {k: v for k, v in asdict(workload).items() if k != "tokens"}
    command = [
        str(python),
        "-m",
        module,
        "--levels",
        plan.side_levels,
        "--turns",
        str(plan.side_turns),
        "--workload",
        json.dumps(fields),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def run(parts: set[str], plan: Plan, workload: Workload, spy: Path | None) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": machine(),
        "workload": workload.to_json(),
        "plan": asdict(plan),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "loadavg_start": loadavg(),
    }
    if "idle" in parts:
        log(f"idle: {plan.idle} connections")
        results["idle"] = await idle_scenario(workload, sessions=plan.idle)
    if "websocket" in parts:
        log("websocket: speaking sessions")
        results["websocket"] = await websocket_runs(workload, plan, spy)
    if "pacing" in parts:
        log("pacing: lead 0 and 2 s")
        results["pacing"] = await pacing_runs(workload, plan)
    if "inprocess" in parts:
        log("in-process: voicechat")
        results["inprocess"] = side_by_side(Path(sys.executable), "bench.inprocess", workload, plan)
    if "pipecat" in parts:
        if PIPECAT_PYTHON.exists():
            log("in-process: pipecat")
            results["pipecat"] = side_by_side(PIPECAT_PYTHON, "bench.pipecat_bench", workload, plan)
        else:
            log(f"pipecat: skipped, no {PIPECAT_PYTHON} (make bench-pipecat-venv)")
    if "chunker" in parts:
        from bench.chunking import chunking_figures

        log("chunker: the table's texts as token-sized deltas")
        results["chunker"] = chunking_figures()
    if "real" in parts:
        from bench.real import real_backends

        log("real backends: piper")
        results["real"] = await real_backends(repeats=5)
    if "local-llm" in parts:
        from bench.local_llm import local_llm_bench

        log("local LLM and Piper: first audio and tokens/s")
        results["local_llm"] = await local_llm_bench()
    results["loadavg_end"] = loadavg()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the smoke run (under a minute)")
    parser.add_argument("--only", action="append", choices=PARTS, help="run only this part")
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument("--spy", type=Path, help="py-spy the busiest WebSocket run into this file")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    parts = set(args.only or (("idle", "websocket") if args.quick else PARTS))
    raise_fd_limit(65536)
    out = args.out or ROOT / "bench" / "results" / ("quick.json" if args.quick else "bench.json")
    results = asyncio.run(run(parts, plan, Workload(), args.spy))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print(render(results))
    if "local_llm" in results:
        from bench.local_llm import render as render_local_llm

        print("\n" + render_local_llm(results["local_llm"]))
    print(
        f"\nmachine: {results['machine']}; load average {results['loadavg_start']} → "
        f"{results['loadavg_end']}\nresults: {out}"
    )


if __name__ == "__main__":
    main()
