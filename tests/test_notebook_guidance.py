"""What a learner sees in a notebook (no Spark): an untouched TODO guides (lab, section, hint command,
grade) instead of a traceback, TODO comments fit a cell, and the grade shows as an HTML table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from traitlets.config import Config

from medilake_lab import grader
from medilake_lab.contract.labs import all_labs
from medilake_lab.course.notebooks import KERNEL_CONFIG, TODO_WIDTH, labs_dir, strip_solution
from medilake_lab.errors import TodoNotImplementedError
from medilake_lab.grader.model import CheckResult, LabReport, Status
from medilake_lab.grader.render import report_html

SOLUTION = ("def ingest(feed):\n    loaded = []\n"
            "    # BEGIN SOLUTION find the files already in the table (_source_file), then append each new "
            "batch in order with mergeSchema, and return the batches appended\n"
            "    loaded.append(feed)\n    # END SOLUTION\n    return loaded\n\n\ningest('patients')")


def test_todo_comment_is_wrapped_to_fit_a_cell_and_keeps_every_word() -> None:
    stub = strip_solution(SOLUTION, lab="01", section="4. Append")
    todo_lines = [line for line in stub.splitlines() if line.lstrip().startswith("#")]
    assert len(todo_lines) > 1 and all(len(line) <= TODO_WIDTH for line in todo_lines)
    words = " ".join(line.strip().lstrip("#").strip() for line in todo_lines).removeprefix("TODO: ").split()
    assert words == SOLUTION.split("BEGIN SOLUTION ")[1].split("\n")[0].split()
    assert 'raise todo("01", "4. Append")' in stub


def test_an_untouched_todo_names_lab_section_hint_and_the_grade_now(tmp_path: Path, bundled_data: Path) -> None:
    namespace = {"warehouse": str(tmp_path), "data_dir": str(bundled_data)}
    with pytest.raises(TodoNotImplementedError) as caught:
        exec(strip_solution(SOLUTION, lab="01", section="4. Append"), namespace)  # noqa: S102
    exc = caught.value
    assert isinstance(exc, NotImplementedError) and (exc.lab, exc.section) == ("01", "4. Append")
    assert "`medilake_lab hint 01`" in str(exc) and 'section "4. Append"' in str(exc)
    # outside a notebook there are no notebook parameters: the grade is the default warehouse's,
    # which the test fixture makes an empty folder
    expected = grader.grade("01")
    first_fail = next(r.id for r in expected.results if r.status is Status.FAIL)
    assert exc.grade == f"0/{expected.total} checks pass (first to fix: {first_fail})"


@pytest.mark.slow
def test_in_a_kernel_the_first_todo_shows_guidance_not_a_traceback(tmp_path: Path, bundled_data: Path) -> None:
    """Run All on a lab's first TODO cells in a real Jupyter kernel, with the notebook's parameters."""
    params = nbformat.v4.new_code_cell(f"warehouse = {str(tmp_path / 'wh')!r}\ndata_dir = {str(bundled_data)!r}")
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(strip_solution(SOLUTION, lab="01",
                                                                                           section="4. Append"))])
    with pytest.raises(CellExecutionError):
        NotebookClient(nb, kernel_name="python3", timeout=120, startup_timeout=180,
                       config=Config(KERNEL_CONFIG)).execute()
    error = next(o for o in nb.cells[1].outputs if o.output_type == "error")
    shown = "\n".join(error.traceback)
    assert error.ename == "TodoNotImplementedError"
    assert 'TODO — lab 01, section "4. Append"' in shown and "medilake_lab hint 01" in shown
    assert "Now: 0/" in shown and "checks pass" in shown
    assert "Traceback" not in shown and "File \"" not in shown and "----" not in shown


def test_every_learner_lab_stub_names_its_lab() -> None:
    for lab in all_labs():
        path = labs_dir() / lab.notebook
        if not path.exists():
            continue
        stubs = [c.source for c in nbformat.read(path, as_version=4).cells
                 if c.cell_type == "code" and "raise todo(" in c.source]
        assert stubs and all(f'raise todo("{lab.id}", "' in s for s in stubs), lab.notebook


def test_the_notebook_grade_is_an_html_table_with_escaped_text() -> None:
    report = LabReport("01", "Bronze <ingestion>", warehouse=Path("/wh/[x]"), data=Path("/data"), results=[
        CheckResult("01.tables_exist", "Tables exist", Status.PASS, "6 tables", "h", "r"),
        CheckResult("01.schema", "Schemas", Status.FAIL, "bronze.patients has <b>no</b> _corrupt_record",
                    "declare _corrupt_record STRING", "PERMISSIVE keeps bad lines"),
        CheckResult("01.history", "History", Status.SKIP, "skipped: needs 01.schema", "h2", "r2"),
    ])
    page = report_html(report)
    assert page.count("<tr>") == 4 and "<th style='text-align:left'>finding</th>" in page
    assert "&lt;b&gt;no&lt;/b&gt;" in page and "<b>no</b>" not in page and "Bronze &lt;ingestion&gt;" in page
    assert "<b>hint:</b> declare _corrupt_record STRING" in page and "h2" not in page
    assert "Lab 01: 1/3 checks passed" in page


def test_jvm_start_up_noise_is_dropped_and_real_errors_still_show(tmp_path: Path) -> None:
    """What the JVM started inside quiet_jvm_stderr() writes to stderr, read where this process's
    stderr goes (a file here, the notebook's stderr output in a kernel)."""
    script = ("import sys, time\nsys.stderr.write('WARNING: Using incubator modules: jdk.incubator.vector\\n')\n"
              "sys.stderr.flush(); time.sleep(0.3)\nsys.stderr.write('ERROR SparkContext: a real error\\n')\n")
    captured = tmp_path / "stderr.txt"
    code = ("import os, subprocess, sys\n"
            f"fd = os.open({str(captured)!r}, os.O_WRONLY | os.O_CREAT); os.dup2(fd, 2)\n"
            "from medilake_lab.runtime.spark import quiet_jvm_stderr\n"
            f"with quiet_jvm_stderr():\n    child = subprocess.Popen([sys.executable, '-c', {script!r}])\n"
            "sys.stderr.write('after the block\\n'); sys.stderr.flush()\nchild.wait()\n"
            "import time; time.sleep(0.3)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    lines = captured.read_text().splitlines()
    assert "ERROR SparkContext: a real error" in lines and "after the block" in lines
    assert not any("incubator" in line for line in lines)
