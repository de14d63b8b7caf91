"""The lab metadata file, the grader registry and the learner notebooks agree."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from medilake_lab import grader
from medilake_lab.contract.labs import all_labs, get_lab
from medilake_lab.course.notebooks import (
    NotebookError,
    build_learner_notebooks,
    checks_output,
    labs_dir,
    solutions_dir,
    strip_solution,
)
from medilake_lab.errors import LabNotFoundError, MediLakeError


def test_every_check_has_a_function_and_every_function_a_check() -> None:
    for lab in all_labs():
        listed = {f"{lab.id}.{c.id}" for c in lab.checks}
        assert set(grader.registered(lab)) == listed


def test_every_check_has_hint_rule_and_known_dependencies() -> None:
    for lab in all_labs():
        ids = [c.id for c in lab.checks]
        assert len(ids) == len(set(ids))
        for spec in lab.checks:
            assert spec.hint.strip() and spec.rule.strip()
            assert all(ids.index(d) < ids.index(spec.id) for d in spec.depends)


def test_lab_ids_accept_short_form_and_reject_unknown() -> None:
    assert get_lab("1").id == "01"
    with pytest.raises(LabNotFoundError, match="known labs: 01"):
        get_lab("99")


def test_newer_format_version_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "labs.yaml"
    bad.write_text("format_version: 99\nlabs: []\n")
    with pytest.raises(MediLakeError, match="newer than this kit supports"):
        all_labs.__wrapped__(bad)


def test_strip_solution_replaces_region_with_todo() -> None:
    src = "x = 1\n    # BEGIN SOLUTION read the file\n    y = x + 1\n    # END SOLUTION\nprint(y)"
    out = strip_solution(src)
    assert "y = x + 1" not in out
    assert "    # TODO: read the file\n    from medilake_lab import todo" in out
    assert out.startswith("x = 1") and out.endswith("print(y)")


def test_unbalanced_markers_are_reported_with_location() -> None:
    with pytest.raises(NotebookError, match="lab.ipynb cell 3: # BEGIN SOLUTION without END"):
        strip_solution("# BEGIN SOLUTION\nx = 1", "lab.ipynb cell 3")


def test_labs_folder_is_up_to_date_and_every_lab_has_a_todo() -> None:
    assert build_learner_notebooks(write=False) == [], "run `medilake_lab dev build-labs`"
    for lab in all_labs():
        learner = nbformat.read(labs_dir() / lab.notebook, as_version=4)
        assert any("# TODO:" in c.source for c in learner.cells if c.cell_type == "code")


def test_committed_notebooks_have_a_parameters_cell_and_learner_notebooks_no_outputs() -> None:
    """(Solution notebooks store the outputs of their # NBVAL_CHECK_OUTPUT cells: test_nbval.py.)"""
    for folder in (solutions_dir(), labs_dir()):
        for path in folder.glob("*.ipynb"):
            nb = nbformat.read(path, as_version=4)
            assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), path
            if folder == labs_dir():
                assert not any(c.outputs or checks_output(c) for c in nb.cells if c.cell_type == "code"), path
