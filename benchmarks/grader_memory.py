"""Time and memory of each check of one lab's grade, from a cold grader cache (a first grade ever).

Runs ``medilake_lab.grader.grade(lab)`` as ``check NN`` does, in this process, with a fresh,
temporary ``MEDILAKE_STATE`` (so every reference result is computed, none read from disk), each
check function wrapped to time it. The process's RSS is sampled every 20 ms. Prints one row per
check: status, seconds, RSS before it (MiB) and the peak while it ran (MiB), then the whole grade.
Checks skipped because a check they need failed show as skipped with no figures.

Usage::

    python benchmarks/grader_memory.py --lab 02 -w WAREHOUSE -d DATA
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from medilake_lab import grader


class PeakRss:
    """The process's RSS (bytes), sampled every 20 ms by a daemon thread: the peak since the last
    :meth:`reset` and the peak since it was made."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.lock = threading.Lock()
        self.peak = self.overall = self.now()
        threading.Thread(target=self._sample, daemon=True).start()

    def now(self) -> int:
        return self.process.memory_info().rss

    def reset(self) -> int:
        """Start a new peak from the RSS now, and return it."""
        with self.lock:
            self.peak = self.now()
            return self.peak

    def sample(self) -> None:
        rss = self.now()
        with self.lock:
            self.peak, self.overall = max(self.peak, rss), max(self.overall, rss)

    def _sample(self) -> None:
        while True:
            self.sample()
            time.sleep(0.02)


def measured_grade(lab: str, warehouse: Path, data: Path) -> tuple[grader.LabReport, dict[str, tuple], float, int]:
    """Grade ``lab`` (its check functions wrapped to time them) and return ``(report, {check id:
    (seconds, RSS before, peak RSS)}, seconds of the whole grade, its peak RSS)`` (RSS in bytes)."""
    rss, figures = PeakRss(), {}

    def timed(full_id: str, fn: Callable) -> Callable:
        def run(ctx: object) -> object:
            before, start = rss.reset(), time.perf_counter()
            try:
                return fn(ctx)
            finally:
                took = time.perf_counter() - start
                rss.sample()  # a check shorter than the sampling interval
                figures[full_id] = (took, before, rss.peak)
        return run

    registered = grader.registered
    grader.registered = lambda spec: {full_id: timed(full_id, fn) for full_id, fn in registered(spec).items()}
    try:
        start = time.perf_counter()
        report = grader.grade(lab, warehouse, data)
        seconds = time.perf_counter() - start
    finally:
        grader.registered = registered
    rss.sample()
    return report, figures, seconds, rss.overall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", required=True, help="lab id, e.g. 02")
    parser.add_argument("-w", "--warehouse", type=Path, required=True)
    parser.add_argument("-d", "--data", type=Path, required=True)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="grader-memory-") as state:
        os.environ["MEDILAKE_STATE"] = state  # a cold cache: read by the grader when it needs it
        report, figures, seconds, peak = measured_grade(args.lab, args.warehouse, args.data)
    mib = 2**20
    print("| check | status | s | RSS before MiB | peak MiB |\n|---|---|---|---|---|")
    for result in report.results:
        if result.id in figures:
            took, before, high = figures[result.id]
            print(f"| {result.id} | {result.status.value} | {took:.1f} | {before / mib:,.0f} | {high / mib:,.0f} |")
        else:
            print(f"| {result.id} | {result.status.value} | — | — | — |")
    print(f"| **lab {args.lab}** | **{report.passed}/{report.total}** | **{seconds:.1f}** | | **{peak / mib:,.0f}** |")
    return 0 if report.passed == report.total else 1


if __name__ == "__main__":
    raise SystemExit(main())
