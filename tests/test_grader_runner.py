"""The check runner reports, never crashes: a checks module that cannot be imported is a FAIL of
every check of its lab, naming the module and the error."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from medilake_lab import grader
from medilake_lab.contract.labs import get_lab


def test_a_checks_module_that_fails_to_import_fails_every_check(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    real = importlib.import_module

    def broken(name: str, *args, **kwargs):
        if name == "medilake_lab.grader.lab01":
            raise SyntaxError("invalid syntax (lab01.py, line 3)")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(grader.importlib, "import_module", broken)
    report = grader.grade("01", tmp_path)
    lab = get_lab("01")
    assert len(report.results) == len(lab.checks)
    first = report.results[0]
    assert first.status is grader.Status.FAIL
    assert "medilake_lab.grader.lab01 failed to import: SyntaxError" in first.finding
    assert all(r.status is not grader.Status.PASS for r in report.results)
