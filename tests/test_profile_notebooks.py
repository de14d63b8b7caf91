"""The notebook profile (benchmarks/profile_notebooks.py) and the process-tree CPU meter
(benchmarks/cpu_time.py): no Spark, no kernel — a hand-made executed notebook and a child that
leaves an orphan behind."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import profile_notebooks

    return profile_notebooks


def _executed(path: Path, spans: list[tuple[float, float]], end: float, sources: list[str]) -> Path:
    """A notebook as papermill leaves it: an injected parameters cell, then one code cell per
    ``spans`` entry (start, end seconds after the notebook's start), the notebook ending at ``end``."""
    t0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

    def stamp(seconds: float) -> str:
        return (t0 + timedelta(seconds=seconds)).isoformat()

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("warehouse = '/tmp/wh'")
    params.metadata = {"tags": ["injected-parameters"], "papermill": {"duration": 0.0, "start_time": stamp(0),
                                                                      "end_time": stamp(0)}}
    nb.cells = [nbformat.v4.new_markdown_cell("# Lab"), params]
    for (start, stop), source in zip(spans, sources, strict=True):
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["papermill"] = {"start_time": stamp(start), "end_time": stamp(stop), "duration": stop - start}
        nb.cells.append(cell)
    nb.metadata["papermill"] = {"start_time": stamp(0), "end_time": stamp(end), "duration": end}
    nbformat.write(nb, path)
    return path


def test_profile_splits_wall_time_into_cells_and_outside(bench, tmp_path: Path) -> None:
    profile_notebooks = bench
    spans = [(4.0, 6.0), (6.5, 21.5), (22.0, 52.0)]
    sources = ["import pandas as pd", "from medilake_lab import get_spark\nspark = get_spark(warehouse)",
               "# NBVAL_CHECK_OUTPUT\n\nspark.sql('OPTIMIZE silver.x')"]
    nb = _executed(tmp_path / "03_x.ipynb", spans, 55.0, sources)
    p = profile_notebooks.profile(nb)
    assert p.wall == 55.0
    assert p.in_cells == pytest.approx(sum(stop - start for start, stop in spans))
    assert (p.before, p.after) == (spans[0][0], 55.0 - spans[-1][1])
    # numbered as the learner's notebook has them: markdown cell 1, code cells 2-4 (no parameters cell)
    assert p.spark_start.number == 3 and p.spark_start.seconds == 15.0
    slowest = p.top(1)[0]
    assert (slowest.number, slowest.first_line) == (4, "spark.sql('OPTIMIZE silver.x')")
    text = profile_notebooks.report([p])
    assert "| 03_x.ipynb | 55 | 47 | 8 (4 + 1 + 3) | 15 (cell 3) | 30 (cell 4) |" in text


def test_profile_ignores_notebooks_papermill_did_not_run(bench, tmp_path: Path) -> None:
    profile_notebooks = bench
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    nbformat.write(nb, tmp_path / "01_x.ipynb")
    assert profile_notebooks.profile(tmp_path / "01_x.ipynb") is None
    with pytest.raises(SystemExit):
        profile_notebooks.main([str(tmp_path)])


def test_tree_time_counts_an_orphan_that_outlives_the_command() -> None:
    """The command exits at once; the grandchild it leaves burns 0.5 s of CPU afterwards (as the
    Spark JVM does after its Python exits) and is counted. Measured from a process of its own
    (the meter waits for every child of the process it runs in)."""
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"
    spawn = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {burn!r}])"
    out = subprocess.run([sys.executable, str(BENCH / "cpu_time.py"), "--", sys.executable, "-c", spawn],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    cpu = re.match(r"cpu (\d+\.\d) s", out.stderr)
    assert cpu and float(cpu[1]) >= 0.5, out.stderr
