"""Learner workflow commands at CLI level: check, status, hint, reset, catchup, run, quiz,
doctor."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from rich.console import Console
from typer.testing import CliRunner

from conftest import ROOT, copy_warehouse
from medilake_lab import cli, errors
from medilake_lab.cli import app
from medilake_lab.contract.labs import all_labs, get_lab
from medilake_lab.course import backup, notebooks, progress
from medilake_lab.runtime import config

runner = CliRunner()


@pytest.fixture()
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide terminal, so that long temporary paths are printed unbroken."""
    monkeypatch.setattr(cli, "console", Console(width=250))


def _recorded() -> dict:
    return progress.load()["labs"]


def test_status_on_a_fresh_workspace_points_to_lab_01() -> None:
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "01_bronze_ingestion.ipynb" in result.output


def test_status_shows_grade_and_quiz_from_progress() -> None:
    progress.record_grade("01", 9, 9)
    progress.record_quiz("01", 17, 20)
    result = runner.invoke(app, ["status"])
    assert "9/9" in result.output and "17/20" in result.output


def test_hint_on_empty_warehouse_reveals_more_each_time(tmp_path: Path, bundled_data: Path) -> None:
    args = ["hint", "01", "-w", str(tmp_path), "-d", str(bundled_data)]
    first = runner.invoke(app, args).output
    assert "01.tables_exist" in first and "hint:" in first and "exam rule:" not in first
    second = runner.invoke(app, args).output
    assert "exam rule:" in second and "solution:" not in second
    assert "no more hints" not in first + second
    last = "no more hints for 01.tables_exist; the solution is in solutions/01_bronze_ingestion.ipynb"
    third = runner.invoke(app, args).output
    assert last in " ".join(third.split())
    fourth = runner.invoke(app, args).output
    assert last in " ".join(fourth.split())


def test_hint_for_unknown_check_is_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["hint", "01", "no_such_check", "-w", str(tmp_path)])
    assert result.exit_code == 2 and "checks: tables_exist" in result.output


@pytest.mark.spark
@pytest.mark.notebooks
def test_reset_removes_lab_tables_and_catchup_is_idempotent(solution_runs: dict, bundled_data: Path,
                                                             tmp_path: Path) -> None:
    wh = copy_warehouse(solution_runs["warehouse"], tmp_path / "wh")
    result = runner.invoke(app, ["catchup", "02", "-w", str(wh), "-d", str(bundled_data)])
    assert result.exit_code == 0, result.output
    assert "already complete" in result.output and "nothing to do" in result.output
    result = runner.invoke(app, ["reset", "01", "-w", str(wh), "--yes"])
    assert result.exit_code == 0 and "bronze.patients" in result.output
    assert not (wh / "bronze" / "patients").exists()
    result = runner.invoke(app, ["reset", "01", "-w", str(wh), "--yes"])
    assert "nothing to remove" in result.output


def test_doctor_reports_each_item() -> None:
    result = runner.invoke(app, ["doctor"])
    for item in ("Java", "Delta jars", "raw data", "warehouse", "Jupyter kernel"):
        assert item in result.output


# ---------------------------------------------------------------- which warehouse and data

def test_check_on_missing_default_warehouse_fails_with_hints_and_names_it(
        monkeypatch: pytest.MonkeyPatch, wide: None, bundled_data: Path) -> None:
    monkeypatch.delenv("MEDILAKE_WAREHOUSE")
    default = config.warehouse_dir()
    assert not default.exists()
    result = runner.invoke(app, ["check", "01"])
    assert result.exit_code == 1, result.output
    assert "hint:" in result.output and "run lab 01" in result.output
    assert f"warehouse {default}" in result.output and f"data      {bundled_data}" in result.output
    report = json.loads(runner.invoke(app, ["check", "01", "--json"]).stdout)[0]
    assert (report["warehouse"], report["data"]) == (str(default), str(bundled_data))
    assert not default.exists(), "grading must not create the warehouse"


@pytest.mark.parametrize("how", ["option", "file", "env"])
def test_check_of_a_given_warehouse_that_is_not_a_folder_is_usage_error(
        how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wide: None) -> None:
    wrong = ROOT / "README.md" if how == "file" else tmp_path / "nope" / "warehouse"
    args = ["check", "02"]
    if how == "env":
        monkeypatch.setenv("MEDILAKE_WAREHOUSE", str(wrong))
    else:
        args += ["-w", str(wrong)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    origin = "MEDILAKE_WAREHOUSE" if how == "env" else "--warehouse"
    problem = "is not a folder" if how == "file" else "does not exist"
    assert f"warehouse {wrong} (from {origin}) {problem}" in result.output
    assert "hint:" not in result.output and "run lab 02" not in result.output
    assert not wrong.exists() or wrong.is_file()


@pytest.mark.parametrize("make", [False, True])
def test_check_without_raw_data_is_one_usage_error(make: bool, tmp_path: Path, wide: None) -> None:
    nodata = tmp_path / "nodata"
    if make:
        (nodata / "landing").mkdir(parents=True)
    result = runner.invoke(app, ["check", "02", "-w", str(tmp_path), "-d", str(nodata)])
    assert result.exit_code == 2, result.output
    assert f"no raw feeds in data folder {nodata} (from --data)" in result.output
    assert "`medilake_lab generate`" in result.output and "--data DIR" in result.output
    assert "FAIL" not in result.output and "hint:" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_check_records_progress_only_for_the_configured_warehouse_and_data(
        tmp_path: Path, wide: None, bundled_data: Path) -> None:
    other_wh = tmp_path / "other-wh"
    other_wh.mkdir()
    other_data = tmp_path / "other-data"
    feed_file = other_data / "landing" / "patients" / "patients_001.json.gz"
    feed_file.parent.mkdir(parents=True)
    feed_file.write_bytes((bundled_data / "landing" / "patients" / "patients_001.json.gz").read_bytes())
    for args in (["-w", str(other_wh)], ["-d", str(other_data)]):
        result = runner.invoke(app, ["check", "01", *args])
        assert result.exit_code == 1, result.output
        assert "not recorded in your progress" in result.output
        assert "01" not in _recorded()
    as_json = json.loads(runner.invoke(app, ["check", "01", "--json", "-w", str(other_wh)]).stdout)
    assert as_json[0]["recorded"] is False and "01" not in _recorded()

    result = runner.invoke(app, ["check", "01", "-w", str(config.warehouse_dir())])
    assert "not recorded" not in result.output
    assert _recorded()["01"]["passed"] == 0 and _recorded()["01"]["total"] == len(get_lab("01").checks)
    assert "by" not in _recorded()["01"]


def test_doctor_reports_a_missing_warehouse_without_creating_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wide: None) -> None:
    missing = tmp_path / "typo" / "warehouse"
    monkeypatch.setenv("MEDILAKE_WAREHOUSE", str(missing))
    result = runner.invoke(app, ["doctor"])
    assert f"OK   warehouse: {missing} (from MEDILAKE_WAREHOUSE) does not exist yet; will be created " \
           "by lab 01" in result.output
    assert not (tmp_path / "typo").exists()

    under_file = tmp_path / "a-file" / "warehouse"
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MEDILAKE_WAREHOUSE", str(under_file))
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert f"FAIL warehouse: {under_file} (from MEDILAKE_WAREHOUSE) does not exist" in output
    assert "set MEDILAKE_WAREHOUSE to a writable folder" in output


# ---------------------------------------------------------------- status

def _progress(labs: dict[str, tuple[int, int, str]], quizzes: tuple[str, ...] = ()) -> None:
    """Write a progress file: lab → (passed, total, minute of last_run); a quiz for ``quizzes``."""
    progress.save({"format_version": 1, "exams": [],
                   "labs": {lab: {"passed": p, "total": t, "last_run": f"2026-01-01T10:{m}:00+00:00"}
                            for lab, (p, t, m) in labs.items()},
                   "quizzes": {lab: {"best": 5, "total": 5, "last": 5, "last_run": "x"}
                               for lab in quizzes}})


def _next() -> tuple[str, str]:
    """What ``status`` says to do next, and the command (the last line)."""
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    *what, command = result.output[result.output.index("next:"):].strip().splitlines()
    return " ".join(" ".join(what).split()), command.strip()


def test_status_next_starts_from_the_lab_graded_last(monkeypatch: pytest.MonkeyPatch) -> None:
    _progress({"02": (16, 16, "01"), "03": (10, 10, "02")}, quizzes=("02", "03"))
    assert _next() == (f"next: open labs/{get_lab('04').notebook} (make lab), do its TODOs, then grade it:",
                       "medilake_lab check 04")
    _progress({"02": (16, 16, "01"), "03": (4, 10, "02")}, quizzes=("02",))
    assert _next()[1] == "medilake_lab hint 03"
    _progress({"01": (3, 9, "03"), "02": (16, 16, "01"), "03": (10, 10, "02")})
    assert _next()[1] == "medilake_lab hint 01"
    later = [lab.id for lab in all_labs()[1:]]
    everything_but_01 = {lab: (5, 5, f"{minute:02d}") for minute, lab in enumerate(later, start=1)}
    _progress(everything_but_01, quizzes=tuple(later))
    assert _next()[1] == "medilake_lab check 01"
    _progress({**everything_but_01, "01": (9, 9, "00")}, quizzes=("01", *later))
    assert _next()[1] == "medilake_lab exam associate"


def test_status_keeps_the_next_command_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "console", Console(width=24))
    _progress({"01": (3, 9, "00")})
    what, command = _next()
    assert what == "next: fix lab 01:" and command == "medilake_lab hint 01"


# ---------------------------------------------------------------- reset and catchup

def test_reset_without_a_terminal_says_to_pass_yes(tmp_path: Path) -> None:
    table = tmp_path / get_lab("02").tables[0].replace(".", "/")
    table.mkdir(parents=True)
    result = runner.invoke(app, ["reset", "02", "-w", str(tmp_path)], input="")
    assert result.exit_code == 1 and "--yes" in result.output and "nothing removed" in result.output
    assert table.exists()
    (table / "mine.txt").write_text("the learner's work")
    result = runner.invoke(app, ["reset", "02", "-y", "-w", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert get_lab("02").tables[0] in result.output and not table.exists()
    [backup] = (tmp_path.parent / f"{tmp_path.name}-backups").iterdir()
    assert (backup / table.relative_to(tmp_path) / "mine.txt").read_text() == "the learner's work"
    assert backup.name.endswith("-reset-02") and f"kept in {backup}" in " ".join(result.output.split())


def test_reset_removes_a_labs_folders_with_its_tables(tmp_path: Path) -> None:
    """Lab 05's checkpoints and landing volume go with its tables: checkpoints left behind would
    say every file was already read, and the re-run streams would write nothing."""
    lab = next(lab for lab in all_labs() if lab.folders)
    folders = [tmp_path / folder for folder in lab.folders]
    for folder in folders:
        (folder / "x").mkdir(parents=True)
    kept = tmp_path / "volumes" / "mine"
    kept.mkdir(parents=True)
    result = runner.invoke(app, ["reset", lab.id, "-y", "-w", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert not any(folder.exists() for folder in folders) and kept.exists()
    assert lab.folders[0] in result.output
    backups = list((tmp_path.parent / f"{tmp_path.name}-backups").glob(f"*-reset-{lab.id}"))
    assert len(backups) == 1, "moved aside, not deleted"
    assert all((backups[0] / folder / "x").is_dir() for folder in lab.folders)


def test_reset_forgets_the_grades_of_removed_labs() -> None:
    _progress({"01": (9, 9, "00"), "02": (16, 16, "01")})
    result = runner.invoke(app, ["reset", "02", "--yes"])
    assert result.exit_code == 0, result.output
    assert list(_recorded()) == ["01"]


def test_catchup_records_the_grade_of_each_lab_it_builds(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path, wide: None) -> None:
    executed = []
    monkeypatch.setattr(notebooks, "execute_lab", lambda spec, **_: executed.append(spec.id))
    other = tmp_path / "other"
    result = runner.invoke(app, ["catchup", "03", "-w", str(other)])
    assert result.exit_code == 0, result.output
    assert executed == ["01", "02"] and _recorded() == {}
    assert "not recorded in your progress" in result.output

    executed.clear()
    result = runner.invoke(app, ["catchup", "03"])
    assert result.exit_code == 0, result.output
    assert executed == ["01", "02"], "nothing was built, so both solutions run"
    recorded, checks = _recorded(), len(get_lab("01").checks)
    assert recorded["01"] == {**recorded["01"], "passed": 0, "total": checks, "by": "catchup"}
    assert recorded["02"]["by"] == "catchup"
    status = runner.invoke(app, ["status"]).output
    assert f"0/{checks} by catchup" in status


def _learner_tables(warehouse: Path, *labs: str) -> dict[Path, str]:
    """A stand-in for the learner's work: one file in each table folder of ``labs``; returns
    ``{file: content}``."""
    files = {}
    for lab in labs:
        for name in get_lab(lab).tables:
            table = warehouse / name.replace(".", "/")
            table.mkdir(parents=True)
            (table / "mine.txt").write_text(f"learner's {name}")
            files[table / "mine.txt"] = f"learner's {name}"
    return files


def _fake_solutions(monkeypatch: pytest.MonkeyPatch, fail: str | None = None,
                    error: BaseException | None = None) -> list[str]:
    """Solutions that write a file into each table folder of their lab (``fail``: that lab
    writes one table, then raises ``error``); returns the ids of the labs executed."""
    executed: list[str] = []

    def execute_lab(spec, warehouse=None, **_):
        executed.append(spec.id)
        for name in spec.tables:
            table = config.warehouse_dir(warehouse) / name.replace(".", "/")
            table.mkdir(parents=True, exist_ok=True)
            (table / "solution.txt").write_text("rebuilt")
            if spec.id == fail:
                raise error or errors.NotebookError(f"{spec.notebook}: cell 3 of 9 raised OSError: disk full")

    monkeypatch.setattr(notebooks, "execute_lab", execute_lab)
    return executed


def test_catchup_lists_what_it_replaces_and_why_and_asks(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path, wide: None) -> None:
    mine = _learner_tables(tmp_path, "01", "02", "03")
    executed = _fake_solutions(monkeypatch)
    result = runner.invoke(app, ["catchup", "03", "-w", str(tmp_path)], input="")
    assert result.exit_code == 1, result.output
    assert executed == [] and all(path.read_text() == text for path, text in mine.items())
    assert "nothing changed" in result.output and "--yes" in result.output
    lines = result.output.splitlines()
    for lab in ("01", "02", "03"):
        for name in get_lab(lab).tables:
            assert any(f"lab {lab}  {name}  — " in line for line in lines), name
    why = next(line for line in lines if "bronze.patients" in line)
    assert "lab 01 fails tables_exist" in why, "the failing checks of lab 01 are named"
    assert "built on lab 01's tables" in next(line for line in lines if "sandbox." in line)
    assert not (tmp_path.parent / f"{tmp_path.name}-backups").exists()


def test_catchup_keeps_the_replaced_tables_in_a_backup(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path, wide: None) -> None:
    wh = tmp_path / "wh"
    mine = _learner_tables(wh, "01", "03")
    executed = _fake_solutions(monkeypatch)
    result = runner.invoke(app, ["catchup", "03", "-w", str(wh)], input="y\n")
    assert result.exit_code == 0, result.output
    assert executed == ["01", "02"]
    [backup] = (tmp_path / "wh-backups").iterdir()
    assert f"kept in {backup}" in result.output
    for path, text in mine.items():
        assert (backup / path.relative_to(wh)).read_text() == text, "the learner's table is kept"
        assert not path.exists()
    assert (wh / "bronze" / "patients" / "solution.txt").exists()
    assert not (wh / "sandbox").exists() or not any((wh / "sandbox").iterdir()), "lab 03 starts empty"


@pytest.mark.parametrize("interrupt", [False, True])
def test_a_failed_rebuild_puts_the_learners_tables_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                         wide: None, interrupt: bool) -> None:
    _progress({"01": (3, 9, "00"), "04": (2, 8, "01")})
    before = progress.progress_file().read_text()
    wh = config.warehouse_dir()
    mine = _learner_tables(wh, "01", "04")
    executed = _fake_solutions(monkeypatch, fail="02", error=KeyboardInterrupt() if interrupt else None)
    result = runner.invoke(app, ["catchup", "04", "--yes"])
    assert result.exit_code == (130 if interrupt else 1), result.output
    assert executed == ["01", "02"] and "Traceback" not in result.output
    assert "interrupted" in result.stderr if interrupt else "cell 3 of 9 raised OSError" in result.stderr
    assert (f"in the warehouse {wh} the tables of these labs are as before (your tables are back as they were"
            in result.stderr)
    assert "run the same catchup command again" in result.stderr
    assert all(path.read_text() == text for path, text in mine.items())
    assert not list(wh.rglob("solution.txt")), "what the failed rebuild wrote is removed"
    assert not (wh.parent / f"{wh.name}-backups").exists()
    assert progress.progress_file().read_text() == before


def test_catchup_help_says_it_replaces_tables() -> None:
    result = runner.invoke(app, ["catchup", "--help"])
    assert result.exit_code == 0 and "REPLACES YOUR TABLES" in result.output and "--yes" in result.output


def test_a_backup_that_cannot_be_written_changes_nothing(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    mine = _learner_tables(wh, "01")
    blocked = tmp_path / "backup"
    blocked.mkdir()
    (blocked / "bronze").write_text("a file where a folder must go")
    items = backup.lab_items([get_lab("01")])
    with pytest.raises(errors.WarehouseError, match=r"could not move bronze\.patients .* nothing was removed"):
        backup.set_aside(items, blocked, wh)
    assert all(path.read_text() == text for path, text in mine.items())


def test_ctrl_c_between_two_moves_puts_everything_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interruption after some tables were moved into the backup moves them back and is
    re-raised: no table is left half in the warehouse, half in the backup."""
    wh = tmp_path / "wh"
    mine = _learner_tables(wh, "01")
    moves = []
    real_move = backup.shutil.move

    def move_then_interrupt(src, dst):  # the third move is interrupted; moves back go through
        if len(moves) == 2 and "backup" in str(dst):
            moves.append("interrupted")
            raise KeyboardInterrupt
        moves.append(src)
        return real_move(src, dst)

    monkeypatch.setattr(backup.shutil, "move", move_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        backup.set_aside(backup.lab_items([get_lab("01")]), tmp_path / "backup", wh)
    assert moves[2] == "interrupted" and len(moves) == 5, "two moves, the interrupted one, two moves back"
    assert all(path.read_text() == text for path, text in mine.items())
    assert not (tmp_path / "backup").exists()


# ---------------------------------------------------------------- run --learner

def test_run_learner_names_the_failing_cell_as_the_learner_sees_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, wide: None) -> None:
    params = nbformat.v4.new_code_cell("warehouse = None\ndata_dir = None")
    params.metadata["tags"] = ["parameters"]
    todo = notebooks.strip_solution('def ingest(feed):\n    # BEGIN SOLUTION append each batch\n    pass\n'
                                    '    # END SOLUTION\n\n\ningest("patients")', lab="01", section="4. Append")
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell(todo)],
                                  metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    labs = tmp_path / "labs"
    labs.mkdir()
    nbformat.write(nb, labs / get_lab("01").notebook)
    monkeypatch.setattr(notebooks, "labs_dir", lambda: labs)
    result = runner.invoke(app, ["run", "01", "--learner", "-w", str(tmp_path / "wh")])
    assert result.exit_code == 1, result.output
    line = next(x for x in result.stderr.splitlines() if x.startswith("error: "))
    assert line.startswith(f"error: {get_lab('01').notebook}: ")
    # papermill's executed copy counts an injected parameters cell: there it is cell 4
    assert ('cell 3 of 3 (def ingest) raised TodoNotImplementedError: TODO in lab 01, section "4. Append": '
            "write your code in place of the TODO lines (a hint: `medilake_lab hint 01`)") in line
    assert "cell 4" not in result.output


def _notebook(folder: Path, lab: str, *sources: str) -> Path:
    """A notebook for ``lab`` in ``folder``: a parameters cell, then code cells of ``sources``."""
    params = nbformat.v4.new_code_cell("warehouse = None\ndata_dir = None")
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, *map(nbformat.v4.new_code_cell, sources)],
                                  metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    folder.mkdir(exist_ok=True)
    nbformat.write(nb, folder / get_lab(lab).notebook)
    return folder


DIES = "import os\nos._exit(9)  # as the OOM killer would"


def test_run_names_the_cell_whose_kernel_died(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              wide: None) -> None:
    labs = _notebook(tmp_path / "labs", "01", "x = 1", DIES, "y = 2")
    monkeypatch.setattr(notebooks, "labs_dir", lambda: labs)
    monkeypatch.setenv("MEDILAKE_DRIVER_MEMORY", "3g")
    result = runner.invoke(app, ["run", "01", "--learner", "-w", str(tmp_path / "wh")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "checks passed" not in result.output
    [line] = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert f"error: {get_lab('01').notebook}: the kernel died while running cell 3 of 4 (import os)" in line
    assert "MEDILAKE_DRIVER_MEMORY (now 3g)" in line


def test_catchup_names_the_solution_whose_kernel_died_and_restores(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path, wide: None) -> None:
    solutions = _notebook(tmp_path / "solutions", "01", DIES)
    monkeypatch.setattr(notebooks, "solutions_dir", lambda: solutions)
    wh = tmp_path / "wh"
    mine = _learner_tables(wh, "01")
    result = runner.invoke(app, ["catchup", "02", "-y", "-w", str(wh)])
    assert result.exit_code == 1, result.output
    assert f"{get_lab('01').notebook}: the kernel died while running cell 2 of 2 (import os)" in result.stderr
    assert f"in the warehouse {wh} the tables of these labs are as before" in result.stderr
    assert all(path.read_text() == text for path, text in mine.items())


def test_an_interrupted_run_names_the_notebook_and_cell_and_grades_nothing(monkeypatch: pytest.MonkeyPatch,
                                                                            tmp_path: Path, wide: None) -> None:
    """Ctrl-C while a cell runs (here the cell sends SIGINT to the process running papermill)."""
    ctrl_c = "import os, signal, time\nos.kill(os.getppid(), signal.SIGINT)\ntime.sleep(60)"
    labs = _notebook(tmp_path / "labs", "01", "x = 1", ctrl_c)
    monkeypatch.setattr(notebooks, "labs_dir", lambda: labs)
    result = runner.invoke(app, ["run", "01", "--learner", "-w", str(tmp_path / "wh")])
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.stderr and "checks passed" not in result.output
    assert f"{get_lab('01').notebook}: stopped in cell 3 of 3 (import os, signal, time)" in result.stderr


@pytest.fixture()
def slow_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 'python3' kernel that never answers (found first on JUPYTER_PATH), and a 1 s start-up
    timeout."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "slow", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MEDILAKE_KERNEL_TIMEOUT", "1")


def test_a_kernel_that_starts_too_slowly_says_how_to_wait_longer(slow_kernel: None, monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path, wide: None) -> None:
    labs = _notebook(tmp_path / "labs", "01", "x = 1")
    monkeypatch.setattr(notebooks, "labs_dir", lambda: labs)
    result = runner.invoke(app, ["run", "01", "--learner", "-w", str(tmp_path / "wh")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert (f"error: {get_lab('01').notebook}: the Jupyter kernel did not start within 1 s. On a busy machine "
            "give it longer, e.g. MEDILAKE_KERNEL_TIMEOUT=600") in result.stderr


@pytest.mark.parametrize("value", ["soon", "0", "-5", "1.5"])
def test_a_bad_kernel_timeout_is_a_usage_error(value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDILAKE_KERNEL_TIMEOUT", value)
    result = runner.invoke(app, ["run", "01", "-w", str(tmp_path)])
    assert result.exit_code == 2 and f"MEDILAKE_KERNEL_TIMEOUT={value!r} is not a whole number" in result.stderr


# ---------------------------------------------------------------- quiz

def test_quiz_stopped_early_is_not_saved() -> None:
    from medilake_lab.quiz.loader import load_bank
    from medilake_lab.quiz.session import build_quiz

    args = ["quiz", "01", "--count", "3", "--seed", "5"]
    plan = build_quiz(load_bank(None)[0], "01", seed=5, count=3)
    result = runner.invoke(app, args, input=",".join(plan[0].correct) + "\n")
    assert result.exit_code == 0, result.output
    assert "not saved" in result.output and "Saved to" not in result.output
    assert "01" not in progress.load()["quizzes"]
    answers = "".join(",".join(s.correct) + "\n" for s in plan)
    result = runner.invoke(app, args, input=answers)
    assert "Saved as practice" in result.output and "not saved" not in result.output
    saved = progress.load()
    assert "01" not in saved["quizzes"], "3 of the lab's questions (--count) is practice, never the quiz score"
    assert saved["practice_quizzes"][-1]["score"] == 3


# ---------------------------------------------------------------- run replaces tables only when asked

def test_run_on_a_fresh_warehouse_does_not_ask(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, wide: None) -> None:
    """As `make demo` runs it: nothing to replace, so no question (and no terminal needed)."""
    executed = _fake_solutions(monkeypatch)
    result = runner.invoke(app, ["run", "01", "-w", str(tmp_path)], input="")
    assert executed == ["01"], result.output
    assert "replaces" not in result.output and "Aborted" not in result.output
    assert not (tmp_path.parent / f"{tmp_path.name}-backups").exists()


def test_run_lists_what_it_replaces_and_refuses_without_an_answer(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path, wide: None) -> None:
    mine = _learner_tables(tmp_path, "01")
    executed = _fake_solutions(monkeypatch)
    result = runner.invoke(app, ["run", "01", "-w", str(tmp_path)], input="")
    assert result.exit_code == 1 and executed == [], result.output
    assert "nothing changed" in result.output and "--yes" in result.output
    for name in get_lab("01").tables:
        assert f"lab 01  {name}" in result.output
    assert all(path.read_text() == text for path, text in mine.items())
    assert not (tmp_path.parent / f"{tmp_path.name}-backups").exists()


@pytest.mark.parametrize("answer", [["--yes"], "y\n"])
def test_run_keeps_the_replaced_tables_in_a_backup(answer: list[str] | str, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path, wide: None) -> None:
    wh = tmp_path / "wh"
    mine = _learner_tables(wh, "01")
    executed = _fake_solutions(monkeypatch)
    flags, typed = (answer, "") if isinstance(answer, list) else ([], answer)
    result = runner.invoke(app, ["run", "01", "-w", str(wh), *flags], input=typed)
    assert executed == ["01"] and "Traceback" not in result.output, result.output
    [backup] = (tmp_path / "wh-backups").iterdir()
    assert backup.name.endswith("-run-01") and f"kept in {backup}" in result.output
    for path, text in mine.items():
        assert (backup / path.relative_to(wh)).read_text() == text, "the learner's table is kept"
        assert not path.exists() and (path.parent / "solution.txt").exists()


@pytest.mark.parametrize("interrupt", [False, True])
def test_a_failed_run_puts_the_learners_tables_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    wide: None, interrupt: bool) -> None:
    wh = tmp_path / "wh"
    mine = _learner_tables(wh, "01")
    executed = _fake_solutions(monkeypatch, fail="01", error=KeyboardInterrupt() if interrupt else None)
    result = runner.invoke(app, ["run", "01", "-w", str(wh), "--yes"])
    assert result.exit_code == (130 if interrupt else 1), result.output
    assert executed == ["01"] and "Traceback" not in result.output
    assert (f"run stopped: in the warehouse {wh} the tables of these labs are as before (your tables are back as "
            "they were" in result.stderr)
    assert all(path.read_text() == text for path, text in mine.items())
    assert not list(wh.rglob("solution.txt")), "what the failed run wrote is removed"
    assert not (tmp_path / "wh-backups").exists()


def test_run_help_says_it_asks_before_replacing() -> None:
    result = runner.invoke(app, ["run", "--help"])
    assert result.exit_code == 0 and "asks first" in result.output and "--yes" in result.output
