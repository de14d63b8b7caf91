"""Where a solution notebook's Spark JVM spends its CPU, with Java Flight Recorder (JDK's own).

Runs a lab's solution notebook's code cells in this Python process (no kernel), its Spark driver
JVM recording with JFR (``-XX:StartFlightRecording``, the ``default`` settings: a stack sample
every 20 ms per running thread), dumps the recording with ``jcmd`` before Spark stops, and prints
the share of the JVM's CPU samples that fall in each part of Spark and Delta (a sample counts for
every part its stack passes through, so shares overlap), the busiest thread kinds, the hottest
methods, the processes the JVM started (Hadoop's own local file system runs ``chmod`` and
``readlink`` for its files and Delta commits, libhadoop not being in pyspark; the kit's classes,
:mod:`medilake_lab.runtime.local_fs`, start none since session 16), and the CPU
seconds of each kind of JVM thread from Linux's ``/proc`` (JFR samples Java code only: the JIT
compiler and GC threads are not in its samples).

The notebook must find what its lab builds on: pass a warehouse where the earlier labs ran (a
*copy*: the lab's cells rewrite its tables there). Stop before the grading cells with ``--cells``.

Usage::

    python benchmarks/profile_jvm.py --lab 02 --warehouse /tmp/copy-of-a-labs-01-07-warehouse [--cells 12]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import nbformat
from common import ROOT

from medilake_lab.contract.labs import get_lab
from medilake_lab.course.notebooks import solutions_dir

#: part of the engine → substrings of a stack frame (``package.Class.method``) that put a sample there
PARTS: dict[str, tuple[str, ...]] = {
    "Janino code generation": ("org.codehaus.janino", "org.codehaus.commons", "CodeGenerator"),
    "generated code running": ("GeneratedClass",),
    "Catalyst analyzer": ("catalyst.analysis",),
    "Catalyst optimizer": ("catalyst.optimizer",),
    "Catalyst tree operations": ("catalyst.trees.TreeNode",),
    "adaptive query execution": ("execution.adaptive",),
    "Delta (any)": ("org.apache.spark.sql.delta", "io.delta"),
    "Delta log replay, snapshot": ("delta.Snapshot", "delta.LogSegment", "InMemoryLogReplay"),
    "Delta MERGE": ("delta.commands.MergeIntoCommand", "delta.commands.merge"),
    "Java serialization (tasks)": ("java.io.ObjectOutputStream", "java.io.ObjectInputStream"),
    "Parquet": ("org.apache.parquet",),
    "Py4J (Python calls)": ("py4j.",),
    "class loading from jars": ("java.util.zip.ZipFile", "java.util.jar.JarFile"),
}
FRAME = re.compile(r"^\s+([\w$/.<>]+)\.([\w$<>]+)\(")
THREAD = re.compile(r'sampledThread = "([^"]*)"')
COMMAND = re.compile(r'command = "(\S+)')


def run_cells(lab: str, warehouse: Path, cells: int | None, recording: Path) -> tuple[float, int]:
    """Execute the solution notebook's code cells (parameters cell: ``warehouse``) up to code cell
    ``cells`` (1-based, exclusive; None = all) and dump the JVM's recording; returns the seconds
    and the JVM's process id (still running)."""
    import matplotlib

    matplotlib.use("Agg")
    notebook = nbformat.read(solutions_dir() / get_lab(lab).notebook, as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    scope: dict = {"__name__": "__main__"}
    os.chdir(solutions_dir())  # lab 06 finds its pipeline project beside the notebook
    started = time.perf_counter()
    for number, source in enumerate(code[: (cells - 1) if cells else None], 1):
        exec(compile(source, f"{lab} cell {number}", "exec"), scope)
        if scope.get("warehouse", "") is None:  # the parameters cell just ran: papermill's part
            scope.update(warehouse=str(warehouse), data_dir=str(ROOT / "data"))
    seconds = time.perf_counter() - started
    spark = scope.get("spark")
    if spark is None:
        raise SystemExit("the cells run never started Spark (no `spark` variable)")
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    subprocess.run(["jcmd", str(pid), "JFR.dump", f"filename={recording}"], check=True, capture_output=True)
    return seconds, pid


def thread_kind(name: str) -> str:
    """A thread's name without its number: ``Thread-17`` → ``Thread``, ``GC Thread#0`` → ``GC Thread``."""
    return re.sub(r"[#\-\s]*\d+$", "", name)


def _stat_cpu(stat: str) -> float:
    """User + system CPU seconds of a ``/proc/…/stat`` line (fields 14 and 15 of proc(5))."""
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int, proc: Path = Path("/proc")) -> float:
    """CPU seconds of a live Linux process, all its threads, ended ones included. Raises OSError
    when the process is gone."""
    return _stat_cpu((proc / str(pid) / "stat").read_text())


def thread_cpu(pid: int, proc: Path = Path("/proc")) -> Counter[str]:
    """CPU seconds (user + system) of each kind of thread of a live Linux process, from
    ``<proc>/<pid>/task/*/stat``; a kind is the thread's name as Linux keeps it (15 characters, e.g.
    ``C2 CompilerThre``) without its trailing number. Threads that already ended are not counted
    (the JVM stops idle compiler threads: compare :func:`process_cpu`). Raises OSError when the
    process is gone."""
    kinds = Counter[str]()
    for task in (proc / str(pid) / "task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        kinds[thread_kind(name)] += _stat_cpu(stat)
    return kinds


def thread_report(kinds: Counter[str], process_total: float, top: int = 8) -> str:
    """The JVM's CPU seconds by thread kind (:func:`thread_cpu`), busiest first, the JIT compiler
    threads' share, and what threads that had ended used (``process_total`` minus the kinds)."""
    alive = sum(kinds.values())
    jit = sum(seconds for kind, seconds in kinds.items() if "CompilerThre" in kind)
    lines = [f"JVM: {process_total:.1f} CPU s; threads alive at the end {alive:.1f} s, of which the JIT "
             f"compilers {jit:.1f} s ({100 * jit / process_total if process_total else 0:.0f} % of the JVM's); "
             f"threads that had ended {max(process_total - alive, 0):.1f} s"]
    lines += [f"  {seconds:7.1f} s  {kind}" for kind, seconds in kinds.most_common(top)]
    return "\n".join(lines)


def summarise(recording: Path, top: int) -> str:
    """The report (:func:`report`) of a ``.jfr`` recording, read with the JDK's ``jfr print``."""
    def printed(event: str, *options: str) -> str:
        return subprocess.run(["jfr", "print", "--events", event, *options, str(recording)],
                              check=True, capture_output=True, text=True).stdout

    return report(printed("jdk.ExecutionSample", "--stack-depth", "256"), printed("jdk.ProcessStart"), top)


def report(samples_text: str, processes_text: str, top: int = 15) -> str:
    """Parts, threads, hottest methods and started processes, from ``jfr print`` output of
    ``jdk.ExecutionSample`` events (``samples_text``) and ``jdk.ProcessStart`` events. Threads are
    named without their number; ``Thread`` is Py4J's, running the Python side's calls (the
    driver's query planning), ``Executor task launch worker`` runs tasks."""
    samples, parts, threads, methods = 0, Counter[str](), Counter[str](), Counter[str]()
    for event in samples_text.split("jdk.ExecutionSample {")[1:]:
        frames = [f"{m.group(1)}.{m.group(2)}" for line in event.splitlines() if (m := FRAME.match(line))]
        if not frames:
            continue
        samples += 1
        methods[frames[0]] += 1
        if thread := THREAD.search(event):
            threads[thread_kind(thread.group(1))] += 1
        stack = "\n".join(frames)
        parts.update(part for part, keys in PARTS.items() if any(key in stack for key in keys))
    commands = Counter(m.group(1) for m in COMMAND.finditer(processes_text))
    share = (lambda n: f"{100 * n / samples:5.1f} %") if samples else (lambda n: "  -  ")
    lines = [f"{samples} CPU samples of the JVM's threads", "", "| part | share of samples |", "|---|---|"]
    lines += [f"| {part} | {share(n).strip()} |" for part, n in parts.most_common()]
    lines += ["", "busiest threads: " + ", ".join(f"{name} {share(n).strip()}" for name, n in threads.most_common(5))]
    lines += ["", f"hottest {top} methods (the frame on top of the stack):"]
    lines += [f"  {share(n)}  {method}" for method, n in methods.most_common(top)]
    lines += ["", "processes the JVM started: " + (", ".join(f"{c} ×{n}" for c, n in commands.most_common())
                                                   or "none")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", required=True, help="lab id, e.g. 02")
    parser.add_argument("--warehouse", type=Path, required=True,
                        help="a warehouse where the earlier labs ran (a copy: the cells rewrite it)")
    parser.add_argument("--cells", type=int, help="stop before this code cell (1-based), e.g. the grade cell")
    parser.add_argument("--top", type=int, default=15, help="hottest methods to list")
    parser.add_argument("--recording", type=Path, help="where to keep the .jfr file (default: a temporary one)")
    args = parser.parse_args(argv)
    if "StartFlightRecording" not in os.environ.get("JAVA_TOOL_OPTIONS", ""):
        # the JVM is this process's child: re-run with the option in its environment
        # appended: a JIT option already there (e.g. -XX:TieredStopAtLevel=1) is profiled with it
        options = f"{os.environ.get('JAVA_TOOL_OPTIONS', '')} -XX:StartFlightRecording=settings=default"
        env = {**os.environ, "JAVA_TOOL_OPTIONS": options.strip()}
        return subprocess.run([sys.executable, *sys.argv], env=env).returncode
    recording = args.recording or Path(tempfile.mkdtemp(prefix="medilake-jfr-")) / f"lab{args.lab}.jfr"
    seconds, pid = run_cells(args.lab, args.warehouse.resolve(), args.cells, recording)
    kinds, total = thread_cpu(pid), process_cpu(pid)
    print(f"lab {args.lab}: {seconds:.1f} s in cells (recording adds a little); recording: {recording}\n")
    print(thread_report(kinds, total) + "\n")
    print(summarise(recording, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
