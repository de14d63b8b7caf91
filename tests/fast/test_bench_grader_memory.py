"""Smoke test of benchmarks/grader_memory.py on the fast fixture warehouse, so it cannot rot (no
timing or memory asserts: the figures depend on the machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent.parent / "benchmarks"


def _run(warehouse: Path, data: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "grader_memory.py", "--lab", "02", "--warehouse", str(warehouse),
                           "--data", str(data)], cwd=BENCH, capture_output=True, text=True, timeout=600)


def test_every_check_of_a_passing_grade_gets_its_time_and_memory(silver_warehouse: Path, fast_data: Path) -> None:
    out = _run(silver_warehouse, fast_data)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    rows = [line.split(" | ") for line in out.stdout.splitlines() if line.startswith("| 02.")]
    assert len(rows) == 16 and all(row[1] == "PASS" and float(row[2]) >= 0 for row in rows), out.stdout
    assert "| **lab 02** | **16/16** |" in out.stdout


def test_checks_skipped_after_a_failure_show_no_figures(tmp_path: Path, fast_data: Path) -> None:
    out = _run(tmp_path / "empty-warehouse", fast_data)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "| 02.tables_exist | FAIL |" in out.stdout
    assert "| 02.latest_wins | SKIP | — | — | — |" in out.stdout
