"""Whole-lab verdicts kept on disk (medilake_lab.grader.verdicts), no JVM: an unchanged warehouse is
answered without grading and with the very report a grade gives; a Delta commit, a raw file, a file
read outside the warehouse (lab 06's spec) or the grader's code changed gives a new grade; a
warehouse written within the racy window or during the grade is not kept; a damaged entry is
graded again, never an error."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from fast.conftest import copy_of
from medilake_lab import grader
from medilake_lab.grader import verdicts
from medilake_lab.grader.model import CheckResult, LabReport, Status


@pytest.fixture()
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files a test has just written count as settled (the racy rule has a test of its own)."""
    monkeypatch.setattr(verdicts, "RACY_SECONDS", 0.0)


@pytest.fixture()
def grades(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every lab :func:`grader.grade` is asked to grade (it still grades)."""
    asked: list[str] = []
    real = grader.grade

    def counting(lab_id: str, warehouse=None, data=None) -> LabReport:  # noqa: ANN001
        asked.append(lab_id)
        return real(lab_id, warehouse, data)
    monkeypatch.setattr(grader, "grade", counting)
    return asked


def _outside_grade(spec: Path):  # noqa: ANN202 - a grade() stand-in whose verdict is a file outside the warehouse
    def grade(lab_id: str, warehouse=None, data=None) -> LabReport:  # noqa: ANN001
        text = spec.read_text()
        status = Status.PASS if "name: medilake_lab06" in text else Status.FAIL
        return LabReport(lab_id, "fake", [CheckResult(f"{lab_id}.spec", "spec", status, text.strip(), "", "")],
                         Path(warehouse), Path(data))
    return grade


@pytest.mark.usefixtures("no_racy_window")
def test_an_unchanged_warehouse_is_answered_from_disk_with_the_grade_it_had(
        silver_warehouse: Path, fast_data: Path, tmp_path: Path, grades: list[str]) -> None:
    warehouse = copy_of(silver_warehouse, tmp_path)
    first = verdicts.graded("02", warehouse, fast_data)
    again = verdicts.graded("02", warehouse, fast_data)
    assert grades == ["02"], "the second call graded again"
    assert again == first and again.ok
    assert verdicts.graded("01", warehouse, fast_data) == grader.grade("01", warehouse, fast_data)


@pytest.mark.usefixtures("no_racy_window")
def test_a_new_delta_commit_or_a_changed_raw_file_gives_a_new_grade(
        silver_warehouse: Path, fast_data: Path, tmp_path: Path, grades: list[str]) -> None:
    warehouse = copy_of(silver_warehouse, tmp_path)
    data = Path(shutil.copytree(fast_data, tmp_path / "data"))
    assert verdicts.graded("02", warehouse, data).ok
    # a realistic wrong answer after a first pass: a duplicate key appended to a silver table
    table = warehouse / "silver" / "encounters_clean"
    row = DeltaTable(str(table)).to_pyarrow_table().slice(0, 1)
    write_deltalake(str(table), row, mode="append")
    after_commit = verdicts.graded("02", warehouse, data)
    assert grades == ["02", "02"] and not after_commit.ok
    unique = next(r for r in after_commit.results if r.id == "02.unique_keys")
    assert unique.status is Status.FAIL and "silver.encounters_clean" in unique.finding
    assert verdicts.graded("02", warehouse, data) == after_commit and grades == ["02", "02"]
    raw = next(p for p in sorted((data / "landing").rglob("*")) if p.is_file())
    raw.write_bytes(raw.read_bytes())  # same bytes, a new write: the stamp changes, the lab is graded again
    verdicts.graded("02", warehouse, data)
    assert grades == ["02", "02", "02"]


@pytest.mark.usefixtures("no_racy_window")
def test_a_file_read_outside_the_warehouse_is_stamped_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lab 06 reads the pipeline spec the event log names, wherever the learner's project is."""
    warehouse, data, spec = tmp_path / "wh", tmp_path / "data", tmp_path / "project" / "spark-pipeline.yml"
    for folder in (warehouse, data, spec.parent):
        folder.mkdir()
    spec.write_text("name: medilake_lab06\n")
    monkeypatch.setattr(grader, "grade", _outside_grade(spec))
    assert verdicts.graded("06", warehouse, data).ok
    spec.write_text("name: my_pipeline\n")  # the learner renames the pipeline; the warehouse is as it was
    renamed = verdicts.graded("06", warehouse, data)
    assert not renamed.ok and "my_pipeline" in renamed.results[0].finding
    spec.unlink()
    with pytest.raises(FileNotFoundError):  # not answered from disk: the stand-in reads the missing file
        verdicts.graded("06", warehouse, data)


@pytest.fixture()
def own_code_stamp() -> Iterator[None]:
    """The test takes code stamps of its own; later tests take the real package's again."""
    verdicts.code_stamp.cache_clear()
    yield
    verdicts.code_stamp.cache_clear()


@pytest.mark.usefixtures("own_code_stamp")
def test_other_grader_code_gives_another_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "medilake_lab"
    (package / "grader").mkdir(parents=True)
    check = package / "grader" / "lab01.py"
    check.write_text("LIMIT = 1\n")
    monkeypatch.setattr(verdicts, "_PACKAGE", package)

    def stamp() -> str:  # as a new process takes it (it is taken once per process)
        verdicts.code_stamp.cache_clear()
        return verdicts.code_stamp()
    before = stamp()
    check.write_text("LIMIT = 2\n")
    assert stamp() != before
    assert verdicts.code_stamp() == verdicts.code_stamp.__wrapped__()  # the same files, the same stamp
    after = stamp()
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "x.pyc").write_bytes(b"compiled")  # compiled files are not code of their own
    assert stamp() == after


def test_a_warehouse_written_just_now_is_graded_again(silver_warehouse: Path, fast_data: Path, tmp_path: Path,
                                                      grades: list[str]) -> None:
    """The racy rule: a write in the same clock tick as the stamp would not change it, so a grade of
    files changed less than RACY_SECONDS ago is not kept."""
    warehouse = copy_of(silver_warehouse, tmp_path)  # copied just now
    assert verdicts.RACY_SECONDS >= 1
    verdicts.graded("01", warehouse, fast_data)
    verdicts.graded("01", warehouse, fast_data)
    assert grades == ["01", "01"]
    time.sleep(verdicts.RACY_SECONDS + 0.1)  # settled now (a file's change time cannot be set back)
    settled = verdicts.graded("01", warehouse, fast_data)
    assert verdicts.graded("01", warehouse, fast_data) == settled and grades == ["01", "01", "01"]


@pytest.mark.usefixtures("no_racy_window")
def test_a_warehouse_changed_while_it_was_graded_is_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warehouse, data = tmp_path / "wh", tmp_path / "data"
    warehouse.mkdir()
    data.mkdir()
    calls = []

    def grade_while_a_notebook_writes(lab_id: str, warehouse=None, data=None) -> LabReport:  # noqa: ANN001
        calls.append(lab_id)
        (Path(warehouse) / f"part-{len(calls)}.parquet").write_bytes(b"new")
        return LabReport(lab_id, "fake", [], Path(warehouse), Path(data))
    monkeypatch.setattr(grader, "grade", grade_while_a_notebook_writes)
    verdicts.graded("01", warehouse, data)
    verdicts.graded("01", warehouse, data)
    assert calls == ["01", "01"]


@pytest.mark.usefixtures("no_racy_window")
def test_a_damaged_or_foreign_entry_is_graded_again_not_an_error(
        silver_warehouse: Path, fast_data: Path, tmp_path: Path, grades: list[str]) -> None:
    warehouse = copy_of(silver_warehouse, tmp_path)
    first = verdicts.graded("01", warehouse, fast_data)
    [entry] = list(verdicts.folder().glob("01-*.pickle"))
    entry.write_bytes(entry.read_bytes()[:40])  # cut short
    assert verdicts.graded("01", warehouse, fast_data) == first
    entry.write_bytes(pickle.dumps(("another key", [], "", first)))
    assert verdicts.graded("01", warehouse, fast_data) == first
    assert grades == ["01", "01", "01"]
    assert verdicts.graded("01", warehouse, fast_data) == first and len(grades) == 3


def test_a_cache_folder_that_cannot_be_written_only_costs_the_cache(
        silver_warehouse: Path, fast_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "state-file"
    blocked.write_text("not a folder")
    monkeypatch.setattr(verdicts, "folder", lambda: blocked / "verdicts")
    monkeypatch.setattr(verdicts, "RACY_SECONDS", 0.0)
    assert verdicts.graded("01", copy_of(silver_warehouse, tmp_path), fast_data).ok


def test_stamps_cover_every_file_and_name_an_absent_root(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    (root / "bronze" / "t" / "_delta_log").mkdir(parents=True)
    log = root / "bronze" / "t" / "_delta_log" / "00000000000000000000.json"
    log.write_text("{}")
    first = verdicts.stamp_tree([root])
    assert verdicts.stamp_tree([root]) == first
    log.write_text("{} ")
    assert verdicts.stamp_tree([root]).digest != first.digest
    assert verdicts.stamp_tree([tmp_path / "absent"]).digest != verdicts.stamp_tree([root]).digest
    table = pa.table({"x": [1]})
    write_deltalake(str(root / "silver" / "u"), table)
    assert verdicts.stamp_tree([root]).newest >= os.stat(root / "silver" / "u" / "_delta_log").st_mtime_ns


@pytest.mark.usefixtures("no_racy_window")
def test_the_check_after_a_notebooks_grade_cell_is_answered_from_disk(
        silver_warehouse: Path, fast_data: Path, tmp_path: Path, grades: list[str]) -> None:
    """A lab's last cells run ``show(grade("01", warehouse, data_dir))``; ``medilake_lab check 01``
    in the terminal afterwards prints that report without grading again."""
    from typer.testing import CliRunner

    import medilake_lab
    from medilake_lab.cli import app

    warehouse = copy_of(silver_warehouse, tmp_path)
    in_notebook = medilake_lab.grade("01", warehouse, fast_data)
    result = CliRunner().invoke(app, ["check", "01", "-w", str(warehouse), "-d", str(fast_data), "--json"])
    assert result.exit_code == 0, result.output
    assert grades == ["01"], "the terminal's check graded again"
    [printed] = json.loads(result.stdout)
    assert printed["results"] == in_notebook.to_dict()["results"] and printed["passed"] == in_notebook.total
