"""Smoke test of benchmarks/bench_check_latency.py on the fast fixture warehouse, so it cannot rot
(no timing asserts: the figures depend on the machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent.parent / "benchmarks"


def test_the_latency_benchmark_prints_a_row_per_lab(silver_warehouse: Path, fast_data: Path, tmp_path: Path) -> None:
    saved = tmp_path / "figures.json"
    out = subprocess.run([sys.executable, "bench_check_latency.py", "--warehouse", str(silver_warehouse),
                          "--data", str(fast_data), "--labs", "01", "02", "--runs", "1", "--save", str(saved),
                          "--no-write"], cwd=BENCH, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith(("| 01 |", "| 02 |"))]
    assert len(rows) == 2 and all(row.endswith("| pass |") for row in rows), out.stdout
    figures = json.loads(saved.read_text())
    assert set(figures) == {"01", "02"} and all(f["cpu"] > 0 and f["first_wall"] > 0 for f in figures.values())
