"""Shared helpers for the benchmark scripts: machine facts, timing, and RESULTS.md sections."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BIN = Path(sys.executable).parent
#: Environment variable naming the JSON file where :func:`record_target` collects one `make bench`
#: run's target figures (set by run_all.py, which writes them as one section at the end).
TARGETS_ENV = "MEDILAKE_BENCH_TARGETS"
#: Issue 20's targets that `make bench` measures (2 cores, scale 1): name → limit, as printed.
TARGETS = {"`make demo`, labs 01–04": "≤ 240 s", "`make demo`, every lab": "≤ 420 s",
           "`catchup 04` (labs 01–03)": "≤ 200 s", "every `check NN`, first run after a notebook run": "≤ 2 s",
           "every `check NN`, later runs (median)": "≤ 1 s",
           "labs 01–04 on a standalone cluster": "every check passes"}
#: Lines `medilake_lab run` prints as a lab's notebook starts (``▶ lab 03 Delta optimization: …``)
#: and ends (``  done in 64 s → …``); colour codes are stripped first (:data:`ANSI`).
LAB_EVENTS = re.compile(r"▶ lab \d\d |^\s*done in ")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def machine() -> str:
    """One line: cores, memory, Java, Python, OS."""
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    except FileNotFoundError:  # no Java on the PATH: the line says "Java ?"
        java = ""
    match = re.search(r'version "([^"]+)"', java)
    mem = psutil.virtual_memory().total / 2**30
    return (f"{os.cpu_count()} cores, {mem:.0f} GiB RAM, Java {match.group(1) if match else '?'}, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def timed(cmd: Sequence[str], env: dict[str, str] | None = None, log: Path | None = None,
          marks: list[tuple[float, str]] | None = None) -> tuple[float, int, int]:
    """Run a command (its output to ``log``, else discarded); returns (wall seconds, exit code,
    peak RSS in bytes of the largest process in its tree, the Spark driver JVM included, sampled
    every 0.2 s). With ``marks`` (and a ``log``), the output goes through a pipe and each line
    matching :data:`LAB_EVENTS` is appended to ``marks`` as it is printed: (seconds since the
    command started, the line without colour codes)."""
    start = time.perf_counter()
    piped = marks is not None and log is not None
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = psutil.Popen(list(cmd), stdout=subprocess.PIPE if piped else out,
                        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                        env={**os.environ, **(env or {})})
    copier = None
    if piped:
        def copy() -> None:  # bytes to the log as they come (never blocks the command), noting lab events
            for raw in iter(proc.stdout.readline, b""):
                out.write(raw)
                out.flush()
                for line in ANSI.sub("", raw.decode("utf-8", "replace")).splitlines():  # \r: progress bars
                    if LAB_EVENTS.search(line):
                        marks.append((time.perf_counter() - start, line.strip()))
        copier = threading.Thread(target=copy, daemon=True)
        copier.start()
    peak = 0
    while proc.poll() is None:
        try:
            tree = [proc, *proc.children(recursive=True)]
            peak = max(peak, max((p.memory_info().rss for p in tree if p.is_running()), default=0))
        except psutil.Error:
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - start
    if copier:
        copier.join(timeout=30)  # a process left behind may hold the pipe open: do not wait for it
        if copier.is_alive():
            print(f"note: a process started by {cmd[0]} still holds its output open", flush=True)
    if log and not (copier and copier.is_alive()):
        out.close()
    return wall, proc.returncode, peak


def print_tail(log: Path, lines: int = 30) -> None:
    """Print the last ``lines`` lines of a failed command's log (bytes that are not UTF-8 replaced)."""
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    print("  last lines of its output:\n    " + "\n    ".join(tail), flush=True)


def record_target(target: str, measured: str, met: bool, source: str) -> None:
    """Note the figure of one of :data:`TARGETS` for this `make bench` run's summary (the file
    named by :data:`TARGETS_ENV`; nothing when the benchmark runs on its own). ``measured`` is as
    printed, e.g. "401.2 s". Raises KeyError for a name that is not in :data:`TARGETS`."""
    row = {"target": target, "limit": TARGETS[target], "measured": measured, "met": met, "source": source}
    path = os.environ.get(TARGETS_ENV)
    if not path:
        return
    rows = json.loads(Path(path).read_text()) if Path(path).exists() else []
    Path(path).write_text(json.dumps([*rows, row], indent=1))


def median_time(cmd: Sequence[str], runs: int = 5, env: dict[str, str] | None = None) -> float:
    """Median wall seconds of ``runs`` executions (each must exit 0 or 1: graders may fail)."""
    times = []
    for _ in range(runs):
        wall, code, _ = timed(cmd, env)
        if code not in (0, 1):
            raise RuntimeError(f"{' '.join(cmd)} exited {code}")
        times.append(wall)
    return statistics.median(times)


def write_section(title: str, body: str) -> None:
    """Replace the ``## title`` section of RESULTS.md where it stands (or append it), keeping
    the others."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = f"\n## {title}\n_{stamp} — {machine()}_\n\n{body.strip()}\n"
    pattern = re.compile(rf"\n## {re.escape(title)}\n.*?(?=\n## |\Z)", flags=re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip() + "\n" + section
    RESULTS.write_text(text.rstrip() + "\n")


def sampled(cmd: Sequence[str], env: dict[str, str], log: Path,
            also: Sequence[int] = ()) -> tuple[float, int, int, float]:
    """Run a command (output to ``log``, environment exactly ``env``) and sample, every 0.2 s, the
    process tree it starts plus the trees rooted at the pids ``also`` (a cluster's daemons and the
    executors they launch). Returns (wall seconds, exit code, peak of the summed RSS of all those
    processes in bytes, CPU seconds they used during the run: user + system, the last value seen
    per process minus what the ``also`` trees had used before, so a process living less than 0.2 s
    may be missed)."""
    roots = [psutil.Process(pid) for pid in also if psutil.pid_exists(pid)]
    _, before = _tree_usage(roots)
    used: dict[tuple[int, float], float] = {}
    start, peak = time.perf_counter(), 0
    with open(log, "w") as out:
        proc = psutil.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            while proc.poll() is None:
                rss, cpu = _tree_usage([proc, *roots])
                peak, used = max(peak, rss), {**used, **cpu}
                time.sleep(0.2)
        except BaseException:  # Ctrl-C, or a sampling bug: leave no run behind
            for p in [*proc.children(recursive=True), proc]:
                p.kill()
            raise
    return time.perf_counter() - start, proc.returncode, peak, sum(used.values()) - sum(before.values())


def _tree_usage(roots: Sequence[psutil.Process]) -> tuple[int, dict[tuple[int, float], float]]:
    """Summed RSS in bytes of the processes in the trees under ``roots``, and each one's CPU
    seconds so far (user + system), keyed by (pid, start time). Processes that vanish are skipped."""
    rss, cpu = 0, {}
    for root in roots:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for p in tree:
            try:
                with p.oneshot():
                    rss += p.memory_info().rss
                    times = p.cpu_times()
                    cpu[(p.pid, p.create_time())] = times.user + times.system
            except psutil.Error:
                pass
    return rss, cpu
