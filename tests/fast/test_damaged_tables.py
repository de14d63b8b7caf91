"""Damaged tables and markup-like text (issue 15 items 6 and 7): each fault is built on a copy of a
small bronze warehouse written with delta-rs (no JVM), then graded; the finding names the table, the
damaged file and the fix, once per table, without a traceback; rich shows findings, hints and paths
as they are, whatever brackets they hold."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from deltalake import DeltaTable
from rich.console import Console
from typer.testing import CliRunner

from fast import medallion
from medilake_lab import cli, grader
from medilake_lab.cli import app
from medilake_lab.contract.labs import get_lab
from medilake_lab.errors import DamagedTableError
from medilake_lab.grader import delta
from medilake_lab.grader.context import Context, repair_hint
from medilake_lab.grader.model import CheckResult, LabReport, Status
from medilake_lab.grader.render import print_report, show

TABLE = "bronze.patients"
FIX = "`medilake_lab reset 01`"


@pytest.fixture(scope="module")
def bronze(tmp_path_factory: pytest.TempPathFactory, fast_data: Path) -> Path:
    """Lab 01 solved: the six bronze tables. Read-only: tests break a copy (:func:`damaged`)."""
    warehouse = tmp_path_factory.mktemp("fault-bronze")
    medallion.build_bronze(warehouse, fast_data)
    return warehouse


def _log(warehouse: Path) -> list[Path]:
    return sorted((warehouse / "bronze" / "patients" / "_delta_log").glob("*.json"))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncate_latest(warehouse: Path) -> Path:
    _truncate(_log(warehouse)[-1])
    return _log(warehouse)[-1]


def _empty_latest(warehouse: Path) -> Path:
    _log(warehouse)[-1].write_bytes(b"")
    return _log(warehouse)[-1]


def _drop_parquet(warehouse: Path) -> Path:
    victim = sorted((warehouse / "bronze" / "patients").glob("*.parquet"))[0]
    victim.unlink()
    return victim


def _drop_log(warehouse: Path) -> Path:
    shutil.rmtree(warehouse / "bronze" / "patients" / "_delta_log")
    return warehouse / "bronze" / "patients"


def _cut_checkpoint(warehouse: Path) -> Path:
    """A checkpoint (Spark writes one every 10 commits) whose Parquet footer is cut off."""
    table = warehouse / "bronze" / "patients"
    DeltaTable(str(table)).create_checkpoint()
    checkpoint = next((table / "_delta_log").glob("*.checkpoint.parquet"))
    _truncate(checkpoint)
    return checkpoint


FAULTS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "truncated latest commit": (_truncate_latest, "is cut short or corrupt"),
    "empty latest commit": (_empty_latest, "is empty"),
    "missing Parquet file": (_drop_parquet, "is missing"),
    "folder without _delta_log": (_drop_log, "is a folder without a Delta log"),
    "cut-off checkpoint": (_cut_checkpoint, "cannot be read: Kernel error: Arrow error: Parquet error"),
}


@pytest.fixture
def damaged(bronze: Path, tmp_path: Path) -> Callable[[str], tuple[Path, Path, str]]:
    """``damaged(fault)`` → (warehouse copy with the fault, the damaged file, what the finding says)."""
    def make(fault: str) -> tuple[Path, Path, str]:
        warehouse = Path(shutil.copytree(bronze, tmp_path / "wh"))
        breaker, says = FAULTS[fault]
        return warehouse, breaker(warehouse), says
    return make


# ---------------------------------------------------------------- item 7: one clean finding per table

@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_damaged_table_is_one_finding_naming_table_file_and_fix(
        fault: str, damaged: Callable[[str], tuple[Path, Path, str]], fast_data: Path) -> None:
    warehouse, file, says = damaged(fault)
    report = grader.grade("01", warehouse, fast_data)
    first = report.results[0]
    assert first.id == "01.tables_exist" and first.status is Status.FAIL
    assert first.finding.startswith(f"{TABLE} is damaged: {file} ")
    assert says in first.finding and FIX in first.finding and "catchup 02" in first.finding
    assert not any(r.status is Status.PASS for r in report.results)
    assert sum(str(file) in r.finding for r in report.results) == 1
    assert "Traceback" not in first.finding and "could not inspect" not in first.finding


def test_the_tables_before_the_fault_pass(bronze: Path, fast_data: Path) -> None:
    """The other side: the warehouse each fault is built on grades 100 %."""
    assert grader.grade("01", bronze, fast_data).ok


def test_each_check_that_needs_a_damaged_table_fails_and_points_to_the_first(
        damaged: Callable[[str], tuple[Path, Path, str]], fast_data: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without prerequisites (as when lab 04 reads silver), every check reading bronze.patients
    runs: row_counts no longer passes from the log's statistics, and the file is named once."""
    warehouse, file, _ = damaged("missing Parquet file")
    lab = get_lab("01")
    free = lab.model_copy(update={"checks": [c.model_copy(update={"depends": []}) for c in lab.checks]})
    monkeypatch.setattr("medilake_lab.contract.labs.get_lab", lambda _: free)  # grade() reads it from there
    results = {r.id: r for r in grader.grade("01", warehouse, fast_data).results}
    assert results["01.row_counts"].status is Status.FAIL
    assert results["01.row_counts"].finding == f"{TABLE} is damaged (see 01.tables_exist)"
    assert sum(str(file) in r.finding for r in results.values()) == 1
    # the row-count check itself cannot answer from the log's statistics any more
    check = grader.registered(lab)["01.row_counts"]
    with pytest.raises(DamagedTableError) as caught:
        check(Context(warehouse, fast_data, "01"))
    assert caught.value.file == str(file) and caught.value.name == TABLE


def test_a_cut_short_older_commit_is_named_and_no_rust_backtrace_shows(bronze: Path, tmp_path: Path,
                                                                      fast_data: Path) -> None:
    """delta-rs fails on an older commit; with RUST_BACKTRACE set it appends a backtrace. The
    finding names that commit; in a fresh process so that Rust reads the variable."""
    warehouse = Path(shutil.copytree(bronze, tmp_path / "wh"))
    older = _log(warehouse)[-2]
    _truncate(older)
    code = ("import json, sys; from medilake_lab import grader; "
            "print(json.dumps(grader.grade('01', sys.argv[1], sys.argv[2]).results[0].finding))")
    out = subprocess.run([sys.executable, "-c", code, str(warehouse), str(fast_data)], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "RUST_BACKTRACE": "full"})
    assert out.returncode == 0, out.stderr[-2000:]
    finding = json.loads(out.stdout.strip().splitlines()[-1])
    assert finding.startswith(f"{TABLE} is damaged: {older} (a commit) is cut short or corrupt")
    assert FIX in finding and "<unknown>" not in finding and "backtrace" not in finding.lower()


def test_an_unreadable_latest_commit_names_the_file(damaged: Callable[[str], tuple[Path, Path, str]],
                                                   bronze: Path, tmp_path: Path, fast_data: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit the learner may not read (root reads anything, so the OS error is raised here)."""
    warehouse = Path(shutil.copytree(bronze, tmp_path / "wh"))
    latest = _log(warehouse)[-1]
    read_bytes = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self == latest:
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    finding = grader.grade("01", warehouse, fast_data).results[0].finding
    assert finding.startswith(f"{TABLE} is damaged: {latest} (the latest commit) cannot be read (Permission denied)")
    assert FIX in finding


def test_delta_rs_messages_lose_colour_codes_and_backtraces() -> None:
    """What delta-rs 1.6 raises for an unreadable older commit (an OSError whose text is a coloured
    cause chain), and a DeltaError with the backtrace RUST_BACKTRACE adds."""
    coloured = OSError("Kernel error -> Generic LocalFileSystem error\n          \x1b[31m↳\x1b[0m Unable to open "
                       "file /wh/bronze/t/_delta_log/00000000000000000001.json\n           \x1b[31m↳\x1b[0m "
                       "Permission denied (os error 13)\n")
    assert delta.engine_message(coloured) == (
        "Kernel error -> Generic LocalFileSystem error; Unable to open file "
        "/wh/bronze/t/_delta_log/00000000000000000001.json; Permission denied (os error 13)")
    traced = RuntimeError("Kernel error: Json error: Truncated record whilst reading string\n"
                          "   0: <unknown>\n   1: <unknown>\n  12: start_\n")
    assert delta.engine_message(traced) == "Kernel error: Json error: Truncated record whilst reading string"


def test_the_fix_comes_from_the_lab_list() -> None:
    assert repair_hint("silver.patients_scd", "04").startswith("`medilake_lab reset 02` (it keeps a backup), "
                                                               "then finish lab 02")
    assert "catchup 03" in repair_hint("silver.patients_scd", "04")
    assert "run the lab that builds it" in repair_hint("bronze.no_such_table")


# ---------------------------------------------------------------- item 6: brackets are shown as they are

MARKUP = "[/] [bold]x[/bold] [red"


def _report(warehouse: Path) -> LabReport:
    result = CheckResult("01.row_counts", "Row counts [v2]", Status.FAIL, f"value {MARKUP} in a row",
                         f"hint with {MARKUP}", f"rule with {MARKUP}")
    return LabReport("01", "Bronze [/]", [result], warehouse=warehouse, data=warehouse / "[/]data")


def test_the_terminal_report_shows_markup_like_text_verbatim(tmp_path: Path) -> None:
    out = io.StringIO()
    print_report(_report(tmp_path / "[/]"), Console(file=out, width=400, color_system=None))
    text = out.getvalue()
    for expected in (f"value {MARKUP} in a row", f"hint: hint with {MARKUP}", f"exam rule: rule with {MARKUP}",
                     "Bronze [/]", f"{tmp_path}/[/]", "Row counts [v2]"):
        assert expected in text


def test_the_notebook_report_shows_markup_like_text_verbatim(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    show(_report(tmp_path))
    assert f"hint with {MARKUP}" in capsys.readouterr().out.replace("\n", "")


def test_check_prints_a_damaged_table_in_a_bracketed_warehouse(bronze: Path, tmp_path: Path, fast_data: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: ``check`` on a warehouse whose path holds ``[/]`` and a damaged table."""
    warehouse = Path(shutil.copytree(bronze, tmp_path / "[red]" / "[" / "]" / "wh"))
    latest = _empty_latest(warehouse)
    monkeypatch.setattr(cli, "console", Console(width=1000))  # one finding, one line
    result = CliRunner().invoke(app, ["check", "01", "-w", str(warehouse), "-d", str(fast_data)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert f"{TABLE} is damaged: {latest} (the latest commit) is empty" in result.output
    assert f"warehouse {warehouse}" in result.output
    assert f"Lab 01: 0/{len(get_lab('01').checks)} checks passed" in result.output
