"""Learner workflow commands at CLI level: status, hint, reset, catchup, doctor."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import copy_warehouse
from medilake_lab import progress
from medilake_lab.cli import app

runner = CliRunner()


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
    third = runner.invoke(app, args).output
    assert "solutions/01_bronze_ingestion.ipynb" in third


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
