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
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from fast.conftest import copy_of
from medilake_lab import grader
from medilake_lab.contract.labs import get_lab
from medilake_lab.grader import Context, verdicts
from medilake_lab.grader.model import CheckResult, LabReport, Outcome, Status


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


def test_other_grader_code_gives_another_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "medilake_lab"
    (package / "grader").mkdir(parents=True)
    check = package / "grader" / "lab01.py"
    check.write_text("LIMIT = 1\n")
    monkeypatch.setattr(verdicts, "_PACKAGE", package)
    before = verdicts.code_stamp()
    check.write_text("LIMIT = 2\n")
    after = verdicts.code_stamp()
    assert after.digest != before.digest and after.newest >= os.stat(check).st_mtime_ns
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "x.pyc").write_bytes(b"compiled")  # compiled files are not code of their own
    assert verdicts.code_stamp().digest == after.digest


@pytest.mark.usefixtures("no_racy_window")
def test_the_key_holds_the_code_stamp_and_a_process_with_changed_code_keeps_nothing(
        silver_warehouse: Path, fast_data: Path, tmp_path: Path, grades: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import medilake_lab

    warehouse = copy_of(silver_warehouse, tmp_path)
    real = verdicts.code_stamp()
    verdicts.graded("01", warehouse, fast_data)
    monkeypatch.setattr(verdicts, "code_stamp", lambda: verdicts.Stamp("other code", real.newest))
    verdicts.graded("01", warehouse, fast_data)
    assert grades == ["01", "01"]
    verdicts.graded("01", warehouse, fast_data)
    assert grades == ["01", "01"], "the report of the same code was not reused"
    # the kit on disk changed after this process imported it: it may run the old code
    monkeypatch.setattr(medilake_lab, "IMPORTED_NS", real.newest - 1)
    verdicts.graded("01", warehouse, fast_data)
    verdicts.graded("01", warehouse, fast_data)
    assert grades == ["01", "01", "01", "01"]


def test_the_code_stamp_is_the_same_in_every_kind_of_process(tmp_path: Path) -> None:
    """A notebook kernel (current folder first on sys.path), the console script and ``python -c``
    elsewhere must agree, or a kernel's report would never serve the terminal's check."""
    script = "from medilake_lab.grader import verdicts; print(verdicts.code_stamp().digest)"
    here = verdicts.code_stamp().digest
    for cwd in (tmp_path, Path(__file__).parent):
        out = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == here


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
    entry.write_bytes(pickle.dumps(("another key", ([], "", first))))
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


@pytest.mark.usefixtures("no_racy_window")
def test_a_verdict_that_the_clock_changes_is_not_reused_after_that_time(
        erased_warehouse: Path, fast_data: Path, tmp_path: Path, grades: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Lab 07 passes while the erased rows' old files may still wait for VACUUM; once their retention
    has ended the same files fail it."""
    warehouse = copy_of(erased_warehouse, tmp_path)
    now = verdicts.graded("07", warehouse, fast_data)
    assert now.ok and now.valid_until is not None and now.valid_until > datetime.now(UTC)
    assert verdicts.graded("07", warehouse, fast_data) == now and grades == ["07"]
    later = now.valid_until + timedelta(seconds=1)

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206
            return later
    monkeypatch.setattr(verdicts, "datetime", Later)
    monkeypatch.setattr(Context, "now", lambda self: later)
    then = verdicts.graded("07", warehouse, fast_data)
    assert grades == ["07", "07"]
    erasure = next(r for r in then.results if r.id == "07.erasure_complete")
    assert erasure.status is Status.FAIL and "its retention has ended: VACUUM the table" in erasure.finding


@pytest.mark.usefixtures("no_racy_window")
def test_a_check_that_met_an_unexpected_error_is_graded_again(
        silver_warehouse: Path, fast_data: Path, tmp_path: Path, grades: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """"Too many open files" on a busy laptop is not the learner's verdict: the next check retries."""
    warehouse = copy_of(silver_warehouse, tmp_path)
    lab = get_lab("01")
    real = grader.registered(lab)["01.row_counts"]
    failures = [OSError(24, "Too many open files")]

    def flaky(ctx: Context) -> Outcome:
        if failures:
            raise failures.pop()
        return real(ctx)
    monkeypatch.setitem(grader._REGISTRY, "01.row_counts", flaky)
    first = verdicts.graded("01", warehouse, fast_data)
    row_counts = next(r for r in first.results if r.id == "01.row_counts")
    assert not first.cacheable and "could not inspect: OSError" in row_counts.finding
    assert verdicts.graded("01", warehouse, fast_data).ok and grades == ["01", "01"]


@pytest.mark.usefixtures("no_racy_window")
def test_a_folder_that_cannot_be_listed_means_no_reuse(silver_warehouse: Path, fast_data: Path, tmp_path: Path,
                                                       grades: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A table folder one may enter but not list (another user's) hides its new commits from the stamp."""
    warehouse = copy_of(silver_warehouse, tmp_path)
    hidden = str(warehouse / "bronze" / "patients" / "_delta_log")
    real = os.scandir

    def scandir(path="."):  # noqa: ANN001, ANN202
        if os.fspath(path) == hidden:
            raise PermissionError(13, "Permission denied", hidden)
        return real(path)
    monkeypatch.setattr(verdicts.os, "scandir", scandir)
    assert not verdicts.stamp_tree([warehouse]).complete
    verdicts.graded("01", warehouse, fast_data)
    verdicts.graded("01", warehouse, fast_data)
    assert grades == ["01", "01"]


def test_a_table_copied_back_over_itself_changes_the_stamp(tmp_path: Path) -> None:
    """``cp -a`` keeps sizes and modification times; the new files' inodes and change times differ."""
    root = tmp_path / "wh"
    write_deltalake(str(root / "silver" / "t"), pa.table({"x": [1, 2]}))
    first = verdicts.stamp_tree([root])
    parents = {folder: os.stat(folder) for folder in (root, root / "silver")}
    aside = shutil.move(root / "silver" / "t", tmp_path / "aside")
    shutil.copytree(aside, root / "silver" / "t", copy_function=shutil.copy2)
    for folder, info in parents.items():  # as if nothing had happened around the table either
        os.utime(folder, ns=(info.st_atime_ns, info.st_mtime_ns))
    for path in (root / "silver" / "t").rglob("*"):
        source = Path(aside) / path.relative_to(root / "silver" / "t")
        assert path.stat().st_mtime_ns == source.stat().st_mtime_ns and path.stat().st_size == source.stat().st_size
    assert verdicts.stamp_tree([root]).digest != first.digest


def test_reads_are_recorded_for_every_grade_running_at_once(tmp_path: Path) -> None:
    spec = tmp_path / "spark-pipeline.yml"
    spec.write_text("name: x\n")
    with verdicts._recording() as outer:
        with verdicts._recording() as inner:
            spec.read_text()
        os.listdir(tmp_path)
    assert str(spec) in inner.paths and str(spec) in outer.paths and str(tmp_path) in outer.paths
    assert str(tmp_path) not in inner.paths and outer.complete and inner.complete
    spec.read_text()
    assert verdicts._recordings == []
