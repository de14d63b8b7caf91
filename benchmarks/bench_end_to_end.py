"""The README's main job at two scales, and `catchup 04`: wall time, where it goes, peak memory.

For each scale the raw feeds are generated (scale 1 uses the bundled data/), then
`medilake_lab run <labs>` executes the solution notebooks headlessly and grades them, exactly as
`make demo` does: the notebooks one after another in one kernel (each notebook's last cells grade
its lab), then every lab's grade and report. The run's output says when each notebook starts
(``▶ lab NN``) and ends (``done in``), which splits the wall time into start-up, each lab's notebook
and the final grading. Peak RSS is sampled over the CLI, the notebook kernel and the Spark driver JVM
(the largest single process is reported). Then `medilake_lab catchup 04` into a fresh warehouse on
the bundled data (labs 01–03's solutions, as a learner catching up to lab 04 runs them), and its
labs are graded. After the scale-1 run of every lab, each lab's `medilake_lab check` is timed once
with the run's own state folder: the first check a learner makes after a notebook run. Writes the
"End-to-end" section of RESULTS.md.

Targets (issue 20, 2 cores, scale 1): `make demo` ≤ 420 s for every lab and ≤ 240 s for labs
01–04, `catchup 04` ≤ 200 s, the first `check NN` after a notebook run ≤ 2 s. Labs 01–04's figure
is the time until lab 04's notebook ends plus the whole final grading (of every lab: an upper bound
of what labs 01–04 alone would take).

Usage::

    python benchmarks/bench_end_to_end.py                  # scales 1 and 10, all labs, catchup 04
    python benchmarks/bench_end_to_end.py --scales 0.02 --labs 01 --no-catchup   # smoke run
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from common import BIN, ROOT, print_tail, record_target, timed, write_section

LIMITS = {"`make demo`, labs 01–04": 240.0, "`make demo`, every lab": 420.0, "`catchup 04` (labs 01–03)": 200.0}
FIRST_CHECK = "every `check NN`, first run after a notebook run"
FIRST_CHECK_LIMIT = 2.0


def phases(marks: list[tuple[float, str]], total: float) -> tuple[dict[str, float], dict[str, float]]:
    """Split a `medilake_lab run` of ``total`` seconds by its lab events (:func:`common.timed`'s
    ``marks``: seconds since the start, line). Returns (seconds per part: "start-up" until the first
    notebook starts, each lab id for its notebook, "grading" from the last notebook's end to the
    end; seconds since the start at which each lab's notebook ended). Raises ValueError when a
    notebook's start or end is missing from the output."""
    parts: dict[str, float] = {}
    ends: dict[str, float] = {}
    current, begun = None, 0.0
    for at, line in marks:
        if started := re.search(r"▶ lab (\d\d) ", line):
            if current:
                raise ValueError(f"lab {current}'s notebook has no end in the run's output")
            parts.setdefault("start-up", at)
            current, begun = started.group(1), at
        elif current:  # "done in …"
            parts[current], ends[current] = at - begun, at
            current = None
    if current or not ends:
        raise ValueError("a notebook's start or end is missing in the run's output")
    parts["grading"] = total - max(ends.values())
    return parts, ends


def met(seconds: float, limit: float) -> str:
    return "met" if seconds <= limit else "missed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--labs", default="all", help="lab id or 'all'")
    parser.add_argument("--keep-warehouse", type=Path,
                        help="build the first scale's warehouse here and keep it (for other benchmarks)")
    parser.add_argument("--no-catchup", dest="catchup", action="store_false",
                        help="do not time `medilake_lab catchup 04`")
    parser.add_argument("--no-write", dest="write", action="store_false",
                        help="do not update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    rows, first_checks = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        for scale in args.scales:
            data = ROOT / "data"
            if scale != 1.0:
                from medilake_lab.datagen import generate

                data = Path(tmp) / f"data-{scale:g}"
                generate(data, scale=scale)
            warehouse = Path(tmp) / f"warehouse-{scale:g}"
            if args.keep_warehouse and scale == args.scales[0]:
                warehouse = args.keep_warehouse
            cmd = [str(BIN / "medilake_lab"), "run", args.labs, "--yes", "-w", str(warehouse), "-d", str(data)]
            print(f"scale {scale:g}: {' '.join(cmd)}", flush=True)
            log, marks = Path(tmp) / f"run-{scale:g}.log", list[tuple[float, str]]()
            wall, code, peak = timed(cmd, env={"MEDILAKE_STATE": str(Path(tmp) / f"state-{scale:g}")}, log=log,
                                     marks=marks)
            try:
                parts, ends = phases(marks, wall)
            except ValueError as exc:
                print(f"  {exc}", flush=True)
                parts, ends = {}, {}
            rows.append({"scale": scale, "wall": wall, "peak": peak, "code": code, "parts": parts, "ends": ends})
            print(f"  {wall:.1f} s, peak RSS {peak / 2**20:.0f} MiB, exit {code}; "
                  + ", ".join(f"{part} {s:.0f} s" for part, s in parts.items()), flush=True)
            if code:
                print_tail(log)
            elif scale == 1.0 and args.labs == "all":
                first_checks = time_first_checks([part for part in parts if part.isdigit()], warehouse, data,
                                                 Path(tmp) / f"state-{scale:g}")
        catchup = time_catchup(Path(tmp)) if args.catchup else None
    columns = sorted({part for r in rows for part in r["parts"] if part.isdigit()})
    columns = ["start-up", *columns, "grading"]
    names = {"start-up": "start-up s", "grading": "grading s"}
    body = (f"| scale | labs | wall s | {' | '.join(names.get(c, f'lab {c} s') for c in columns)} | peak RSS MiB "
            f"| vs first | all checks pass |\n|{'---|' * (len(columns) + 6)}\n")
    for r in rows:
        cells = " | ".join(f"{r['parts'][c]:.0f}" if c in r["parts"] else "?" for c in columns)
        body += (f"| {r['scale']:g} | {args.labs} | {r['wall']:.1f} | {cells} | {r['peak'] / 2**20:.0f} "
                 f"| {r['wall'] / rows[0]['wall']:.1f}× | {'yes' if r['code'] == 0 else 'NO'} |\n")
    figures = {}
    first = rows[0]
    if first["scale"] == 1.0 and args.labs == "all" and "04" in first["ends"]:
        figures["`make demo`, labs 01–04"] = (first["ends"]["04"] + first["parts"]["grading"], first["code"])
        figures["`make demo`, every lab"] = (first["wall"], first["code"])
    if catchup:
        figures["`catchup 04` (labs 01–03)"] = catchup
    targets = []
    for target, (seconds, code) in figures.items():
        limit = LIMITS[target]
        verdict = met(seconds, limit) if code == 0 else f"FAILED (exit {code} or a check failing)"
        targets.append(f"{target} ≤ {limit:.0f} s: {seconds:.1f} s, {verdict}")
        record_target(target, f"{seconds:.1f} s" + ("" if code == 0 else " (FAILED)"),
                      code == 0 and seconds <= limit, "bench_end_to_end.py")
    if first_checks:
        slowest = max(first_checks, key=lambda lab: first_checks[lab][0])
        seconds, failing = first_checks[slowest][0], [lab for lab, (_, code) in first_checks.items() if code]
        body += ("\nFirst `medilake_lab check NN` after that scale-1 run (wall s, its state folder): "
                 + ", ".join(f"{lab} {s:.2f}" + ("" if code == 0 else " (FAILS)")
                             for lab, (s, code) in first_checks.items())
                 + ".\n")
        targets.append(f"first check after a notebook run ≤ {FIRST_CHECK_LIMIT:g} s: {seconds:.2f} s (lab {slowest}), "
                       + (met(seconds, FIRST_CHECK_LIMIT) if not failing else "checks FAIL"))
        record_target(FIRST_CHECK, f"{seconds:.2f} s (slowest: lab {slowest})"
                      + (f"; checks failing in lab(s) {', '.join(failing)}" if failing else ""),
                      seconds <= FIRST_CHECK_LIMIT and not failing, "bench_end_to_end.py")
    if len(rows) > 1 and all(r["code"] == 0 for r in rows):
        last = rows[-1]
        ratio = last["scale"] / first["scale"]
        targets.append(f"scale {last['scale']:g} ≤ {ratio:g}× scale {first['scale']:g}: "
                       f"{last['wall'] / first['wall']:.1f}×, {met(last['wall'], ratio * first['wall'])}")
    if targets:
        body += "\nTargets: " + "; ".join(targets) + ".\n"
    body += ("\nA lab's column is its notebook (which ends by grading the lab); start-up is the CLI and the "
             "kernel before lab 01, grading the final grade and report of every lab (the notebooks' grades "
             "are reused when nothing changed). Labs 01–04's figure is the time until lab 04's notebook ends "
             "plus that whole final grading. Commands: `medilake_lab run all --yes -w W -d D` per scale, then "
             "`medilake_lab catchup 04 --yes -w W2 -d data` (`python benchmarks/bench_end_to_end.py`).\n")
    print(body)
    if args.write:
        write_section(f"End-to-end main job (labs {args.labs})", body)
    ok = all(r["code"] == 0 for r in rows) and (catchup is None or catchup[1] == 0)
    return 0 if ok else 1


def time_first_checks(labs: list[str], warehouse: Path, data: Path, state: Path) -> dict[str, tuple[float, int]]:
    """`medilake_lab check NN` once per lab with the state folder of the run that built ``warehouse``
    (its kept grades): lab id → (wall seconds, exit code)."""
    checks = {}
    for lab in labs:
        cmd = [str(BIN / "medilake_lab"), "check", lab, "-w", str(warehouse), "-d", str(data)]
        seconds, code, _ = timed(cmd, env={"MEDILAKE_STATE": str(state)})
        checks[lab] = (seconds, code)
    print("  first check after the run (s): " + ", ".join(f"{lab} {s:.2f}" for lab, (s, _) in checks.items()),
          flush=True)
    return checks


def time_catchup(tmp: Path) -> tuple[float, int]:
    """`medilake_lab catchup 04` into a fresh warehouse on the bundled data, then labs 01–03 graded;
    returns (wall seconds of the catch-up, its exit code, or 1 when it exited 0 but a check fails)."""
    from medilake_lab import grader

    warehouse, data = tmp / "warehouse-catchup", ROOT / "data"
    cmd = [str(BIN / "medilake_lab"), "catchup", "04", "--yes", "-w", str(warehouse), "-d", str(data)]
    print(f"scale 1: {' '.join(cmd)}", flush=True)
    log = tmp / "catchup-04.log"
    seconds, code, _ = timed(cmd, env={"MEDILAKE_STATE": str(tmp / "state-catchup")}, log=log)
    if code:
        print_tail(log)
    else:
        failing = [lab for lab in ("01", "02", "03") if not grader.grade(lab, warehouse, data).ok]
        code = 1 if failing else 0
        print(f"  labs whose checks fail after it: {failing}" if failing else "  labs 01–03 pass", flush=True)
    print(f"  {seconds:.1f} s, exit {code}", flush=True)
    return seconds, code


if __name__ == "__main__":
    raise SystemExit(main())
