"""``medilake_lab dev check``: the kit tests itself (after rustlings' ``dev check``).

Statically (:func:`static_problems`), the lab list in ``labs.yaml`` and the files of each lab
agree: every listed lab has its solution and learner notebook, checks module, quiz bank and test
module, and no such file belongs to an unlisted lab; every check has a hint, a rule and a
registered function and every registered function a listed check; nothing still holds the
placeholders ``dev new-lab`` scaffolds (:data:`~medilake_lab.course.scaffold.MARK`). Each
problem names the file and the fix. :func:`run` then executes every lab: the solution scores
100 % on its grader and the untouched learner notebook fails at least one check.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import nbformat
from rich.console import Console

from medilake_lab import grader
from medilake_lab.contract.labs import LABS_FILE, LabSpec, all_labs
from medilake_lab.course.notebooks import (
    NotebookError,
    build_learner_notebooks,
    execute_notebook,
    labs_dir,
    solutions_dir,
)
from medilake_lab.course.scaffold import MARK
from medilake_lab.errors import MediLakeError
from medilake_lab.quiz import QuizFormatError
from medilake_lab.quiz.loader import CATALOGUE_FILE, default_bank_dir, load_bank, load_catalogue, load_questions
from medilake_lab.runtime import config


def _rel(path: Path) -> str:
    """``path`` relative to the project root when it is inside it (as a developer types it)."""
    try:
        return str(path.resolve().relative_to(config.project_root()))
    except ValueError:
        return str(path)


def lab_files(lab: LabSpec) -> dict[str, Path]:
    """The files lab ``lab`` consists of besides its ``labs.yaml`` entry, by role: ``solution``,
    ``learner``, ``checks``, ``quiz``, ``test`` (the Spark tier) and ``fast`` (the fast tier)."""
    return {"solution": solutions_dir() / lab.notebook, "learner": labs_dir() / lab.notebook,
            "checks": Path(grader.__file__).with_name(f"lab{lab.id}.py"),
            "quiz": default_bank_dir() / f"lab{lab.id}.yaml",
            "test": config.project_root() / "tests" / f"test_lab{lab.id}.py",
            "fast": config.project_root() / "tests" / "fast" / f"test_fast_lab{lab.id}.py"}


_MISSING = {
    "solution": "write it (`medilake_lab dev new-lab` scaffolds a new lab's files)",
    "learner": "run `medilake_lab dev build-labs`",
    "checks": "add it with one @check function per check listed in labs.yaml",
    "quiz": "add the lab's question bank",
    "test": "add the lab's grader test (solution passes, wrong answers fail)",
    "fast": "add the lab's fast-tier module (LAB, WRONG_ANSWERS and a solution-shaped fixture built "
            "without a JVM; see tests/fast/grading.py and tests/fast/test_fast_lab01.py)",
}


def _marks(lines: Iterable[str]) -> list[int]:
    """1-based numbers of the lines (or cells) that still hold the scaffold :data:`MARK`."""
    return [number for number, line in enumerate(lines, start=1) if MARK in line]


def _left(path: Path, where: list[int], unit: str, fix: str) -> list[str]:
    if not where:
        return []
    shown = ", ".join(map(str, where[:6])) + (", …" if len(where) > 6 else "")
    return [f"{_rel(path)}: {len(where)} {MARK} placeholder(s) left ({unit} {shown}): {fix}"]


def _list_problems(labs: tuple[LabSpec, ...]) -> list[str]:
    """Ids in course order and unique; no lab file for a lab the list does not name."""
    ids = [lab.id for lab in labs]
    problems = [f"{_rel(LABS_FILE)}: lab ids must be unique and ascend in course order, found "
                f"{', '.join(ids)}"] if ids != sorted(set(ids)) else []
    notebooks, known = {lab.notebook for lab in labs}, set(ids)
    for folder in (solutions_dir(), labs_dir()):
        problems += [f"{_rel(path)} belongs to no lab in {_rel(LABS_FILE)}: list its lab there "
                     "(`medilake_lab dev new-lab NN \"Title\"` does) or delete the notebook"
                     for path in sorted(folder.glob("*.ipynb")) if path.name not in notebooks]
    for folder, pattern in ((Path(grader.__file__).parent, r"lab(\d{2})\.py"),
                            (default_bank_dir(), r"lab(\d{2})\.yaml"),
                            (config.project_root() / "tests", r"test_lab(\d{2})\.py"),
                            (config.project_root() / "tests" / "fast", r"test_fast_lab(\d{2})\.py")):
        for path in sorted(folder.glob("*lab*")):
            match = re.fullmatch(pattern, path.name)
            if match and match[1] not in known:
                problems.append(f"{_rel(path)} is for lab {match[1]}, which {_rel(LABS_FILE)} does not "
                                "list: add the lab there or delete the file")
    return problems


def _entry_problems(lab: LabSpec, domains: set[str]) -> list[str]:
    """The lab's entry in labs.yaml: objectives, and each check's texts and prerequisites."""
    where = _rel(LABS_FILE)
    problems = []
    if not lab.objectives:
        problems.append(f"lab {lab.id}: no exam objectives: list the exam domains it practises "
                        f"(ids like DEA-3 from quizzes/{CATALOGUE_FILE}) under its objectives in {where}")
    problems += [f"lab {lab.id}: objective {o} is not an exam domain in quizzes/{CATALOGUE_FILE}: fix it "
                 f"in {where}" for o in lab.objectives if o not in domains]
    seen: list[str] = []
    for spec in lab.checks:
        for field in ("title", "hint", "rule"):
            text = getattr(spec, field).strip()
            if not text:
                problems.append(f"lab {lab.id} check {spec.id} has no {field}: write it in {where}")
            elif MARK in text:
                problems.append(f"lab {lab.id} check {spec.id}: the {field} is still a {MARK} "
                                f"placeholder: write it in {where}")
        problems += [f"lab {lab.id} check {spec.id} depends on {d}, which is not a check listed before "
                     f"it: fix depends in {where}" for d in spec.depends if d not in seen]
        seen.append(spec.id)
    return problems


def _notebook_problems(lab: LabSpec, solution: Path, learner: Path) -> list[str]:
    cells = nbformat.read(solution, as_version=4).cells
    problems = _left(solution, _marks(c.source for c in cells), "cell",
                     "write the lab, then `medilake_lab dev build-labs`")
    if not any("parameters" in c.metadata.get("tags", []) for c in cells):
        problems.append(f"{_rel(solution)} has no cell tagged parameters (papermill passes warehouse "
                        "and data_dir to it): tag the cell that sets them")
    if not any(f'grade("{lab.id}"' in c.source for c in cells if c.cell_type == "code"):
        problems.append(f'{_rel(solution)} never calls grade("{lab.id}", …): end it with the grade cell')
    if learner.exists():
        learner_cells = nbformat.read(learner, as_version=4).cells
        if not any("# TODO:" in c.source for c in learner_cells if c.cell_type == "code"):
            problems.append(f"lab {lab.id}: {learner.name} has no TODO for the learner: mark the "
                            f"learner's part of {_rel(solution)} with # BEGIN SOLUTION … # END SOLUTION")
    return problems


def _checks_problems(lab: LabSpec, module: Path) -> list[str]:
    problems = _left(module, _marks(module.read_text().splitlines()), "line", "write the checks")
    try:
        registered = set(grader.registered(lab))
    except Exception as exc:  # noqa: BLE001 - report any import failure as a problem
        return [*problems, f"{_rel(module)} fails to import: {type(exc).__name__}: {exc}"]
    listed = {f"{lab.id}.{c.id}" for c in lab.checks}
    problems += [f"lab {lab.id} check {full.split('.', 1)[1]} has no function: register one in "
                 f'{_rel(module)} with @check("{full}")' for full in sorted(listed - registered)]
    problems += [f"{_rel(module)} registers {full}, which {_rel(LABS_FILE)} does not list: add it to "
                 f"lab {lab.id}'s checks (with hint and rule) or remove the function"
                 for full in sorted(registered - listed)]
    return problems


def _quiz_problems(lab: LabSpec, bank: Path, objective_ids: set[str]) -> list[str]:
    problems = _left(bank, _marks(bank.read_text().splitlines()), "line", "write the questions")
    try:
        questions = load_questions(bank, objective_ids)
    except QuizFormatError as exc:
        return [*problems, str(exc)]
    problems += [f"{_rel(bank)}: question {q.id} is for lab {q.lab or 'dbx'}: set lab: \"{lab.id}\" or "
                 "move it to its own lab's bank" for q in questions if q.lab != lab.id]
    return problems


def static_problems() -> list[str]:
    """Problems found without executing anything, each naming the file and the fix; empty when the
    lab list, notebooks, checks modules, quiz banks and tests agree."""
    try:
        labs = all_labs()
        catalogue = load_catalogue(default_bank_dir() / CATALOGUE_FILE)
    except MediLakeError as exc:
        return [str(exc)]
    domains = {d.id for exam in catalogue.exams.values() for d in exam.domains}
    problems = _list_problems(labs)
    problems += [f"labs/{name} is out of date: run `medilake_lab dev build-labs`"
                 for name in build_learner_notebooks(write=False)]
    for lab in labs:
        files = lab_files(lab)
        problems += _entry_problems(lab, domains)
        problems += [f"lab {lab.id}: no {role} {_rel(path)}: {_MISSING[role]}"
                     for role, path in files.items() if not path.exists()]
        if files["solution"].exists():
            problems += _notebook_problems(lab, files["solution"], files["learner"])
        if files["checks"].exists():
            problems += _checks_problems(lab, files["checks"])
        if files["quiz"].exists():
            problems += _quiz_problems(lab, files["quiz"], catalogue.objective_ids())
        if files["test"].exists():
            problems += _left(files["test"], _marks(files["test"].read_text().splitlines()), "line",
                              "write the tests and remove the xfail mark once the solution passes")
    return problems


def quiz_bias(console: Console) -> list[str]:
    """Print the quiz bank's answer-length figures (:mod:`medilake_lab.quiz.bias`: key-is-longest
    share, the blind strategies' mean mock scores, keys ≥ 1.3× their longest distractor) and return
    them as warnings when a limit is broken; nothing when the bank does not load (that is a problem
    :func:`static_problems` reports)."""
    from medilake_lab.quiz.bias import bias_report

    try:
        questions, catalogue = load_bank()
    except QuizFormatError:
        return []
    report = bias_report(questions, catalogue)
    for line in report.summary():
        console.print(f"quiz bank: {line}")
    return report.warnings()


def quiz_coverage(console: Console) -> list[str]:
    """Print the quiz bank's coverage against the mock draw (:mod:`medilake_lab.quiz.coverage`: per
    exam domain the bank count, the draw and their ratio, the expected overlap of two mocks, the thin
    local/partial objectives) and return a warning per threshold broken; nothing when the bank does
    not load (that is a problem :func:`static_problems` reports)."""
    from medilake_lab.quiz.coverage import coverage_report

    try:
        questions, catalogue = load_bank()
    except QuizFormatError:
        return []
    report = coverage_report(questions, catalogue)
    for line in report.table():
        console.print(f"quiz bank: {line}", markup=False, highlight=False, soft_wrap=True)
    return report.warnings()


def run(data: str | os.PathLike | None = None, console: Console | None = None) -> list[str]:
    """Full self-check; returns the problems found (empty = the kit is sound)."""
    console = console or Console()
    problems = static_problems()
    with tempfile.TemporaryDirectory(prefix="medilake-devcheck-") as tmp:
        warehouse, runs = Path(tmp) / "warehouse", Path(tmp) / "runs"
        warehouse.mkdir()
        for lab in all_labs():
            before = Path(tmp) / f"before-{lab.id}"
            shutil.copytree(warehouse, before)
            params: dict[str, object] = {"warehouse": str(before), "data_dir": str(data) if data else None}
            try:
                execute_notebook(labs_dir() / lab.notebook, runs / f"learner-{lab.notebook}", params,
                                 progress=False)
            except NotebookError:
                pass  # an untouched learner notebook is expected to stop at a TODO
            if grader.grade(lab.id, before, data).ok:
                problems.append(f"lab {lab.id}: the untouched learner notebook already passes")
            else:
                console.print(f"lab {lab.id}: learner notebook fails its grader as it should")
            params["warehouse"] = str(warehouse)
            try:
                execute_notebook(solutions_dir() / lab.notebook, runs / lab.notebook, params,
                                 progress=False)
            except NotebookError as exc:
                problems.append(f"lab {lab.id}: solution failed: {exc}")
                break
            report = grader.grade(lab.id, warehouse, data)
            console.print(f"lab {lab.id}: solution scores {report.passed}/{report.total}")
            if not report.ok:
                failed = [r.id for r in report.results if r.status is not grader.Status.PASS]
                problems.append(f"lab {lab.id}: solution fails {', '.join(failed)}")
    return problems
