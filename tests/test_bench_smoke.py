"""`make bench --quick` as a smoke check: it runs, produces figures, and never sees a frame after
`stopped` or while paused. Timing figures are not asserted (shared 2-core machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(150)
ROOT = Path(__file__).resolve().parent.parent


def test_quick_bench_reports_figures_and_no_frame_after_stopped_or_while_paused(
    tmp_path: Path,
) -> None:
    out = tmp_path / "quick.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    runs = results["websocket"]
    assert [run["sessions"] for run in runs] == [1, 20]
    for run in runs:
        assert run["frames_after_stopped"] == 0
        assert run["frames_while_paused"] == 0
        assert run["order_errors"] == 0
        assert run["errors"] == 0
        assert run["ttfa_ms"]["n"] == run["turns"] > 0
        assert run["stop_ms"]["n"] > 0
        assert run["pause_ms"]["n"] > 0
        assert run["last_overhead_ms"]["n"] > 0
        assert run["frames_per_full_turn"] == [run["expected_frames_per_full_turn"]]
        assert run["server_cpu_ms_per_turn"] > 0
    idle = results["idle"]
    assert idle["held"] == idle["answered"] == idle["server_sessions"] == idle["sessions"]
    assert idle["rss_kib_per_session"] is not None
    assert "| frames after `stopped` | 0 | 0 | 0 |" in done.stdout
