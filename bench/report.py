"""The tables printed at the end of a run (Markdown, as pasted into docs/benchmarks.md)."""

from __future__ import annotations

from typing import Any


def _pp(summary: dict[str, Any] | None, digits: int = 1) -> str:
    if not summary or not summary.get("n"):
        return "–"
    return f"{summary['p50']:.{digits}f} / {summary['p99']:.{digits}f}"


def _ratio(pipecat: float | None, ours: float | None) -> str:
    if pipecat is None or ours is None or ours <= 0:
        return "–"
    return f"{pipecat / ours:.1f}×"


def _gc_counts(run: dict[str, Any]) -> str:
    return " / ".join(str(run["server_gc"][g]["n"]) for g in "012")


def _gc_longest(run: dict[str, Any]) -> str:
    return " / ".join(f"{run['server_gc'][g]['max_ms']:.1f}" for g in "012")


def websocket_table(results: dict[str, Any]) -> str:
    runs = results.get("websocket")
    if not runs:
        return idle_table(results)
    head = (
        "| over WebSocket, per turn | "
        + " | ".join(f"{r['sessions']} speaking" for r in runs)
        + " | target |"
    )
    lines = [head, "|---" * (len(runs) + 2) + "|"]
    targets = {
        "time to first audio − ideal, p50 / p99 (ms)": "p50 ≤ 2 (1 session), p99 ≤ 15 (200)",
        "stop → `stopped`, p50 / p99 (ms)": "p99 ≤ 10 (200)",
        "frames after `stopped`": "0",
        "frames while paused": "0",
    }
    rows: list[tuple[str, Any]] = [
        ("time to first audio, p50 / p99 (ms)", lambda r: _pp(r["ttfa_ms"])),
        ("time to first audio − ideal, p50 / p99 (ms)", lambda r: _pp(r["overhead_ms"], 2)),
        ("time to last audio − ideal, p50 / p99 (ms)", lambda r: _pp(r["last_overhead_ms"], 2)),
        ("stop → `stopped`, p50 / p99 (ms)", lambda r: _pp(r["stop_ms"], 2)),
        ("frames after `stopped`", lambda r: str(r["frames_after_stopped"])),
        ("pause → `paused`, p50 / p99 (ms)", lambda r: _pp(r["pause_ms"], 2)),
        ("frames while paused", lambda r: str(r["frames_while_paused"])),
        ("audio order errors / `error` events", lambda r: f"{r['order_errors']} / {r['errors']}"),
        ("server CPU per turn (ms)", lambda r: f"{r['server_cpu_ms_per_turn']:.1f}"),
        ("server CPU, share of one core", lambda r: f"{r['server_cpu_share']:.2f}"),
        ("server memory per speaking session (KiB)", lambda r: f"{r['rss_kib_per_session']:.0f}"),
        (
            "fake backends' own wake-up lateness, p50 / p99 (ms)",
            lambda r: _pp(r["backend_timer_lateness_ms"], 2),
        ),
        ("server garbage collections, young / middle / full", lambda r: _gc_counts(r)),
        ("… their longest pause, young / middle / full (ms)", lambda r: _gc_longest(r)),
        ("server event-loop lag, p50 / p99 (ms)", lambda r: _pp(r["server_loop_lag_ms"], 2)),
        (
            "… less its waits for a core, p50 / p99 (ms)",
            lambda r: _pp(r["server_loop_lag_ms"].get("own"), 2),
        ),
        ("client event-loop lag, p50 / p99 (ms)", lambda r: _pp(r["client_loop_lag_ms"], 2)),
        (
            "… less its waits for a core, p50 / p99 (ms)",
            lambda r: _pp(r["client_loop_lag_ms"].get("own"), 2),
        ),
        ("turns measured", lambda r: str(r["turns"])),
        ("other processes' load (cores)", lambda r: f"{r['others_cpu_share']:.2f}"),
        (
            "server / client waiting for a core (share of the run)",
            lambda r: f"{r['server_cpu_wait_share']:.2f} / {r['client_cpu_wait_share']:.2f}",
        ),
    ]
    for name, cell in rows:
        cells = " | ".join(cell(r) for r in runs)
        lines.append(f"| {name} | {cells} | {targets.get(name, '')} |")
    idle = idle_table(results)
    return "\n".join(lines) + ("\n\n" + idle if idle else "")


def idle_table(results: dict[str, Any]) -> str:
    idle = results.get("idle")
    if not idle:
        return ""
    lines = [
        "| idle connections | held | answered after | server memory per idle session |",
        "|---|---|---|---|",
        f"| {idle['sessions']} | {idle['held']} (server counts {idle['server_sessions']}) | "
        f"{idle['answered']} | {idle['rss_kib_per_session']:.1f} KiB (target ≤ 64) |",
    ]
    return "\n".join(lines)


def pacing_table(results: dict[str, Any]) -> str:
    runs = results.get("pacing")
    if not runs:
        return ""

    def lead(r: dict[str, Any]) -> str:
        value = r["settings"]["lead"]
        return "lead 0 (off)" if value == 0 else f"lead {value:g} s"

    head = (
        "| pacing, per turn | "
        + " | ".join(f"{r['sessions']} speaking, {lead(r)}" for r in runs)
        + " |"
    )
    lines = [head, "|---" * (len(runs) + 1) + "|"]
    rows: list[tuple[str, Any]] = [
        ("time to first audio, p50 / p99 (ms)", lambda r: _pp(r["ttfa_ms"])),
        ("time to first audio − ideal, p50 / p99 (ms)", lambda r: _pp(r["overhead_ms"], 2)),
        ("time to last audio, p50 (ms)", lambda r: f"{r['last_audio_ms']['p50']:.0f}"),
        (
            "audio ahead of the listener at `stop`, p50 / p99 (ms)",
            lambda r: _pp(r["ahead_at_stop_ms"], 0),
        ),
        ("stop → `stopped`, p50 / p99 (ms)", lambda r: _pp(r["stop_ms"], 2)),
        ("frames after `stopped`", lambda r: str(r["frames_after_stopped"])),
        ("frames while paused", lambda r: str(r["frames_while_paused"])),
        ("turns measured", lambda r: str(r["turns"])),
        ("other processes' load (cores)", lambda r: f"{r['others_cpu_share']:.2f}"),
    ]
    for name, cell in rows:
        lines.append(f"| {name} | " + " | ".join(cell(r) for r in runs) + " |")
    return "\n".join(lines)


def side_by_side_table(results: dict[str, Any]) -> str:
    ours = results.get("inprocess")
    peer = results.get("pipecat")
    if not ours or not peer:
        return ""
    lines = [
        f"| in-process, per turn | sessions | voicechat | Pipecat {peer.get('version', '')} "
        "| Pipecat ÷ voicechat |",
        "|---|---|---|---|---|",
    ]
    lookahead = peer.get("lookahead_ms", 0.0)
    for mine, theirs in zip(ours["levels"], peer["levels"], strict=True):
        n = mine["sessions"]
        rows = [
            (
                "time to first audio − ideal, p50 / p99 (ms)",
                _pp(mine["overhead_ms"], 2),
                _pp(theirs["overhead_ms"], 2),
                _ratio(theirs["overhead_ms"]["p50"], mine["overhead_ms"]["p50"]),
            ),
            (
                f"… less Pipecat's one-token look-ahead ({lookahead:.0f} ms), p50",
                f"{mine['overhead_ms']['p50']:.2f}",
                f"{theirs['overhead_ms']['p50'] - lookahead:.2f}",
                _ratio(theirs["overhead_ms"]["p50"] - lookahead, mine["overhead_ms"]["p50"]),
            ),
            (
                "interruption → output, p50 / p99 (ms)",
                _pp(mine["stop_ms"], 2),
                _pp(theirs["stop_ms"], 2),
                _ratio(theirs["stop_ms"]["p50"], mine["stop_ms"]["p50"]),
            ),
            (
                "audio frames after the interruption",
                str(mine["late_frames"]),
                str(theirs["late_frames"]),
                "",
            ),
            (
                "time to last audio, p50 (ms)",
                f"{mine['last_audio_ms']['p50']:.0f}",
                f"{theirs['last_audio_ms']['p50']:.0f}",
                _ratio(theirs["last_audio_ms"]["p50"], mine["last_audio_ms"]["p50"]),
            ),
            (
                "CPU per turn (ms)",
                f"{mine['cpu_ms_per_turn']:.1f}",
                f"{theirs['cpu_ms_per_turn']:.1f}",
                _ratio(theirs["cpu_ms_per_turn"], mine["cpu_ms_per_turn"]),
            ),
            (
                "memory per session (KiB)",
                f"{mine['rss_kib_per_session']:.0f}",
                f"{theirs['rss_kib_per_session']:.0f}",
                _ratio(theirs["rss_kib_per_session"], mine["rss_kib_per_session"]),
            ),
            (
                "other processes' load (cores)",
                f"{mine['others_cpu_share']:.2f}",
                f"{theirs['others_cpu_share']:.2f}",
                "",
            ),
        ]
        for name, a, b, ratio in rows:
            lines.append(f"| {name} | {n} | {a} | {b} | {ratio} |")
    return "\n".join(lines)


def real_table(results: dict[str, Any]) -> str:
    real = results.get("real")
    if not real:
        return ""
    lines = [
        "| Piper alone (en_US-joe-medium) | characters | audio (s) | first audio (ms) "
        "| real-time factor |",
        "|---|---|---|---|---|",
    ]
    for name, row in real["piper_alone"].items():
        lines.append(
            f"| {name} sentence | {row['chars']} | {row['audio_s']:.2f} | "
            f"{row['first_audio_ms']:.0f} | {row['rtf']:.3f} |"
        )
    lines += [
        "",
        "| through the server (replay LLM at recorded speed + Piper) | first chunk "
        "| LLM completes it (ms) | Piper on it (ms) | time to first audio, median (ms) |",
        "|---|---|---|---|---|",
    ]
    cut = real["first_clause_cut"]
    for label, row in (
        ("short first sentence (`capital`)", real["short_first_sentence"]),
        ("long first sentence, first-clause cut on (30)", cut["on"]),
        ("long first sentence, first-clause cut off (0)", cut["off"]),
    ):
        chunk = row["first_chunk"]
        chunk = chunk if len(chunk) <= 50 else chunk[:47] + "…"
        lines.append(
            f"| {label} | “{chunk}” | {row['llm_first_chunk_ms']:.0f} | "
            f"{row['piper_first_chunk_ms']:.0f} | {row['ttfa_ms']:.0f} |"
        )
    lines.append("")
    lines.append(
        f"Gain of the first-clause cut on the long first sentence: **{cut['gain_ms']:.0f} ms**."
    )
    return "\n".join(lines)


def chunker_table(results: dict[str, Any]) -> str:
    figures = results.get("chunker")
    if not figures:
        return ""
    before = figures.get("before") or {}
    lines = [
        f"| chunker, {figures['texts']} table texts, {figures['deltas']} deltas of "
        f"{figures['mean_delta_chars']} characters | provisional ends | before "
        f"({before.get('commit', 'n/a')}) |",
        "|---|---|---|",
        f"| chunks | {figures['chunks']} | {before.get('chunks', '')} |",
        f"| mean extra deltas to synthesis start | {figures['extra_deltas_to_synthesis_start']} "
        f"| {before.get('extra_deltas_to_chunk', '')} |",
        f"| mean extra deltas to confirmation | {figures['extra_deltas_to_confirmation']} "
        f"| {before.get('extra_deltas_to_chunk', '')} |",
        f"| synthesis starts with the delta of the mark | "
        f"{figures['synthesis_starts_with_the_mark']:.1%} | "
        f"{before.get('chunk_with_the_mark', 0):.1%} |",
        f"| retractions per chunk | {figures['retractions_per_chunk']} | |",
        f"| µs per delta (without the plain-delta fast path) | {figures['us_per_delta']} "
        f"({figures['us_per_delta_without_fast_path']}) | {before.get('us_per_delta', '')} |",
    ]
    return "\n".join(lines)


def render(results: dict[str, Any]) -> str:
    parts = [
        websocket_table(results),
        pacing_table(results),
        side_by_side_table(results),
        real_table(results),
        chunker_table(results),
    ]
    return "\n\n".join(p for p in parts if p)
