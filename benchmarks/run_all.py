"""`make bench`: run every benchmark and write benchmarks/RESULTS.md.

The end-to-end run keeps its scale-1 warehouse (labs 01–04 built by the solutions), and the
grader and layout benchmarks measure that same warehouse instead of rebuilding it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failed = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        warehouse = str(Path(tmp) / "warehouse")
        steps = [["quiz_bias.py"],
                 ["bench_datagen.py"],
                 ["bench_end_to_end.py", "--keep-warehouse", warehouse],
                 ["bench_warm_kernel.py"],  # labs 01-02 in one kernel vs a kernel each
                 ["bench_grader.py", "--warehouse", warehouse, "--lab", "01"],
                 ["bench_grader.py", "--warehouse", warehouse, "--lab", "02"],
                 ["bench_layout.py", "--warehouse", warehouse],
                 ["bench_cluster.py"]]  # labs 01-04 on a localhost standalone cluster and in local mode
        for script, *args in steps:
            print(f"\n=== {script} {' '.join(args)}", flush=True)
            if subprocess.run([sys.executable, str(HERE / script), *args], cwd=HERE).returncode:
                failed.append(script)
            if script == "bench_end_to_end.py" and not Path(warehouse).is_dir():
                print("no warehouse was built: skipping the benchmarks that measure it")
                break
    print(f"\nwrote {HERE / 'RESULTS.md'}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
