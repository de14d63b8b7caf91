"""The README's main job at two scales, and `catchup 04`: wall time, each lab's share, peak memory.

For each scale the raw feeds are generated (scale 1 uses the bundled data/), then
`medilake_lab run <labs>` executes the solution notebooks headlessly and grades them, exactly as
`make demo` does. A lab's time runs from the moment the run prints its start (``▶ lab NN``) to the
next lab's start (or the run's end): its notebook and its grading. Peak RSS is sampled over the CLI,
the notebook kernel and the Spark driver JVM (the largest single process is reported). Then, at the
first scale, `medilake_lab catchup 04` into a fresh warehouse (labs 01–03's solutions, as a learner
catching up to lab 04 runs them). Writes the "End-to-end" section of RESULTS.md.

Targets (issue 20, 2 cores, scale 1): labs 01–04 ≤ 240 s and every lab ≤ 420 s within `make demo`
(`run all`), `catchup 04` ≤ 200 s; scale 10 ≤ 10× scale 1.

Usage::

    python benchmarks/bench_end_to_end.py                  # scales 1 and 10, all labs, catchup 04
    python benchmarks/bench_end_to_end.py --scales 0.02 --labs 01 --no-catchup   # smoke run
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import BIN, ROOT, record_target, timed, write_section

LABS_01_04_LIMIT, ALL_LABS_LIMIT, CATCHUP_04_LIMIT = 240.0, 420.0, 200.0


def lab_seconds(marks: dict[str, float], total: float) -> dict[str, float]:
    """Each lab's seconds from the start marks (lab id → seconds since the run began): until the
    next lab's start, the last one until the run's end ``total``."""
    starts = sorted(marks.items(), key=lambda item: item[1])
    ends = [at for _, at in starts[1:]] + [total]
    return {lab: end - at for (lab, at), end in zip(starts, ends, strict=True)}


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
    rows = []
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
            log, marks = Path(tmp) / f"run-{scale:g}.log", dict[str, float]()
            wall, code, peak = timed(cmd, env={"MEDILAKE_STATE": str(Path(tmp) / f"state-{scale:g}")}, log=log,
                                     marks=marks)
            rows.append((scale, wall, peak, code, lab_seconds(marks, wall)))
            print(f"  {wall:.1f} s, peak RSS {peak / 2**20:.0f} MiB, exit {code}; per lab (s): "
                  + ", ".join(f"{lab} {s:.0f}" for lab, s in rows[-1][4].items()), flush=True)
            if code:
                print("  last lines of its output:\n    " + "\n    ".join(log.read_text().splitlines()[-30:]))
        catchup = None
        if args.catchup:
            cmd = [str(BIN / "medilake_lab"), "catchup", "04", "--yes", "-w", str(Path(tmp) / "warehouse-catchup")]
            print(f"scale 1: {' '.join(cmd)}", flush=True)
            log = Path(tmp) / "catchup-04.log"
            seconds, code, _ = timed(cmd, env={"MEDILAKE_STATE": str(Path(tmp) / "state-catchup")}, log=log)
            catchup = (seconds, code)
            print(f"  {seconds:.1f} s, exit {code}", flush=True)
            if code:
                print("  last lines of its output:\n    " + "\n    ".join(log.read_text().splitlines()[-30:]))
    labs = sorted({lab for *_, per_lab in rows for lab in per_lab})
    body = (f"| scale | labs | wall s | {' | '.join(f'lab {lab} s' for lab in labs)} | peak RSS MiB | vs first "
            f"| all checks pass |\n|{'---|' * (len(labs) + 6)}\n")
    body += "".join(f"| {s:g} | {args.labs} | {w:.1f} | {' | '.join(f'{per_lab.get(lab, 0):.0f}' for lab in labs)} "
                    f"| {p / 2**20:.0f} | {w / rows[0][1]:.1f}× | {'yes' if c == 0 else 'NO'} |\n"
                    for s, w, p, c, per_lab in rows)
    targets = []
    first = rows[0]
    if first[0] == 1.0 and first[3] == 0 and args.labs == "all":
        per_lab = first[4]
        labs_01_04 = first[1] - sum(seconds for lab, seconds in per_lab.items() if lab > "04")  # until lab 05
        for target, limit, seconds in (("`make demo`, labs 01–04", LABS_01_04_LIMIT, labs_01_04),
                                       ("`make demo`, every lab", ALL_LABS_LIMIT, first[1])):
            targets.append(f"{target} ≤ {limit:.0f} s — {seconds:.1f} s, {met(seconds, limit)}")
            record_target(target, f"≤ {limit:.0f} s", f"{seconds:.1f} s", seconds <= limit, "bench_end_to_end.py")
    if catchup:
        seconds, code = catchup
        ok = code == 0 and seconds <= CATCHUP_04_LIMIT
        targets.append(f"`catchup 04` ≤ {CATCHUP_04_LIMIT:.0f} s — {seconds:.1f} s"
                       + (f", {met(seconds, CATCHUP_04_LIMIT)}" if code == 0 else f", FAILED (exit {code})"))
        record_target("`catchup 04` (labs 01–03)", f"≤ {CATCHUP_04_LIMIT:.0f} s", f"{seconds:.1f} s", ok,
                      "bench_end_to_end.py")
    if len(rows) > 1 and all(c == 0 for *_, c, _ in rows):
        last = rows[-1]
        bound = last[0] / first[0] * first[1]
        targets.append(f"scale {last[0]:g} ≤ {last[0] / first[0]:g}× scale {first[0]:g} — "
                       f"{last[1] / first[1]:.1f}×, {met(last[1], bound)}")
    if targets:
        body += "\nTargets (2 cores): " + "; ".join(targets) + ".\n"
    body += ("\nA lab's seconds run from its start in `medilake_lab run` to the next lab's start: its notebook "
             "and its grading. Commands: `medilake_lab run all --yes -w W -d D` per scale, then "
             "`medilake_lab catchup 04 --yes -w W2` (`python benchmarks/bench_end_to_end.py`).\n")
    print(body)
    if args.write:
        write_section(f"End-to-end main job (labs {args.labs})", body)
    ok = all(c == 0 for *_, c, _ in rows) and (catchup is None or catchup[1] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
