"""The TODO stubs of learner notebooks: what runs when a learner runs a cell they have not written yet.

``medilake_lab dev build-labs`` replaces each solution region with (see
:func:`medilake_lab.course.notebooks.strip_solution`)::

    # TODO: read each batch with an explicit schema
    from medilake_lab import todo  # replace these TODO lines with your code
    raise todo("01", "3. Read one batch — keep every line")

so Run All on an untouched lab stops at its first TODO with a few lines of guidance — the lab
and section, ``medilake_lab hint NN``, where the grade is, and the grade now — instead of a
traceback.
"""

from __future__ import annotations

from medilake_lab.errors import MediLakeError, TodoNotImplementedError


def _notebook_parameters() -> tuple[object, object]:
    """``warehouse`` and ``data_dir`` of the running notebook (its parameters cell), else None."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None, None
    shell = get_ipython()
    names = getattr(shell, "user_ns", {})
    return names.get("warehouse"), names.get("data_dir")


def grade_line(lab: str, warehouse: object = None, data: object = None) -> str:
    """One line summing up lab ``lab``'s grade, e.g. "0/14 checks pass (first to fix:
    01.tables_exist)"; "" when it cannot be graded (unknown lab, no raw data)."""
    from medilake_lab import grader
    from medilake_lab.grader.model import Status

    try:
        report = grader.grade(lab, warehouse, data)  # type: ignore[arg-type]
    except MediLakeError:
        return ""
    first = next((r.id for r in report.results if r.status is Status.FAIL), None)
    return f"{report.passed}/{report.total} checks pass" + (f" (first to fix: {first})" if first else "")


def todo(lab: str, section: str = "") -> TodoNotImplementedError:
    """The exception a TODO stub raises: lab ``lab`` ("01"), ``section`` the heading the TODO
    sits under ("3. Read one batch"), and the lab's grade now, graded on the notebook's
    ``warehouse`` and ``data_dir`` when run in a notebook (about a second)."""
    warehouse, data = _notebook_parameters()
    return TodoNotImplementedError(lab, section, grade_line(lab, warehouse, data) if lab else "")
