"""Learner workflow: status, progressive hints, reset and catch-up (see ``labs.yaml``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from medilake_lab.contract.labs import LabSpec, all_labs, get_lab
from medilake_lab.course import progress
from medilake_lab.course.backup import LabItem, backup_dir, existing, lab_items, restore, set_aside
from medilake_lab.errors import CheckNotFoundError, WarehouseError
from medilake_lab.grader.model import CheckResult, LabReport, Status
from medilake_lab.grader.verdicts import graded
from medilake_lab.runtime import config

HINT_LEVELS = 3


def later_labs(lab_id: str) -> list[LabSpec]:
    """Lab ``lab_id`` and every lab after it, in course order."""
    start = get_lab(lab_id).id
    return [lab for lab in all_labs() if lab.id >= start]


def reset(lab_id: str, warehouse: str | os.PathLike | None = None) -> tuple[list[str], Path | None]:
    """Remove the tables (and folders, e.g. checkpoints) lab ``lab_id`` and later labs create;
    earlier labs' tables stay. They are not deleted but moved into a backup folder beside the
    warehouse (:mod:`medilake_lab.course.backup`), from where the learner can take them back.

    Returns ``(names, backup)``: the qualified names of the tables removed and the folders
    (``"volumes/landing/"``), only those that existed, and the backup folder (None when nothing
    existed). In the learner's configured warehouse, the recorded grades of those labs are
    dropped too.

    Raises
    ------
    LabNotFoundError: unknown ``lab_id``.
    ProgressFileError: resetting the configured warehouse, and its progress file cannot be read
        (checked before anything is removed) or written (after the tables are removed).
    WarehouseError: a table could not be moved (nothing was removed).
    """
    labs = later_labs(lab_id)
    mine = config.warehouse_dir(warehouse) == config.warehouse_dir()
    if mine:
        progress.load()  # an unreadable one is moved aside (or a newer one refused) before anything is removed
    removed = existing(lab_items(labs), warehouse)
    backup = backup_dir(f"reset-{labs[0].id}", warehouse) if removed else None
    if backup:
        set_aside(removed, backup, warehouse)
    if mine:
        progress.forget_grades([lab.id for lab in labs])
    return [item.name for item in removed], backup


@dataclass(frozen=True)
class CatchupPlan:
    """What ``catchup`` will do, worked out before anything changes (:func:`plan_catchup`).

    ``target``: the lab to start; ``complete``: ids of earlier labs whose checks all pass (kept);
    ``failed``: the grade of the first earlier lab that does not pass (None when all do);
    ``rebuild``: the earlier labs run from their solutions, from that one on; ``replaced``: the
    tables and folders present now of that lab and every later one, which are set aside."""

    target: LabSpec
    complete: list[str]
    failed: LabReport | None
    rebuild: list[LabSpec]
    replaced: list[LabItem]

    def why(self, item: LabItem) -> str:
        """Why ``item`` is replaced, e.g. "lab 01 fails bronze_counts, schema_enforced"."""
        if self.failed is None:
            return ""
        if item.lab == self.failed.lab:
            failing = [r.id.split(".", 1)[-1] for r in self.failed.results if r.status is not Status.PASS]
            return f"lab {item.lab} fails {', '.join(failing)} ({self.failed.passed}/{self.failed.total} pass)"
        if item.lab < self.target.id:
            return f"rebuilt from its solution after lab {self.failed.lab}"
        return f"built on lab {self.failed.lab}'s tables, which are rebuilt"


def plan_catchup(lab_id: str, warehouse: str | os.PathLike | None = None,
                 data: str | os.PathLike | None = None) -> CatchupPlan:
    """Grade the labs before ``lab_id`` and say what :func:`catchup` would rebuild and replace.

    Raises
    ------
    LabNotFoundError: unknown ``lab_id``.
    ProgressFileError: in the configured warehouse, its progress file cannot be read.
    """
    target = get_lab(lab_id)
    if config.warehouse_dir(warehouse) == config.warehouse_dir():
        progress.load()  # an unreadable one is moved aside (or a newer one refused) before anything is changed
    complete: list[str] = []
    for lab in (lab for lab in all_labs() if lab.id < target.id):
        report = graded(lab.id, warehouse, data)
        if not report.ok:
            rebuild = [x for x in all_labs() if lab.id <= x.id < target.id]
            replaced = existing(lab_items(later_labs(lab.id)), warehouse)
            return CatchupPlan(target, complete, report, rebuild, replaced)
        complete.append(lab.id)
    return CatchupPlan(target, complete, None, [], [])


def catchup(plan: CatchupPlan, warehouse: str | os.PathLike | None = None,
            data: str | os.PathLike | None = None, console: Console | None = None) -> tuple[list[str], Path | None]:
    """Carry out a :func:`plan_catchup` plan: set ``plan.replaced`` aside into a backup folder
    beside the warehouse, run the solutions of ``plan.rebuild`` in order in one kernel
    (:class:`notebooks.WarmKernel`), grade each, and record the grades as built by catchup (grades
    of the later labs, whose tables were set aside, are forgotten). Returns ``(ids of the labs
    executed, the backup folder or None)``.

    When a solution fails (or the run is interrupted), what the rebuild wrote is removed and the
    set-aside tables are moved back: the warehouse and progress are as before; the exception is
    re-raised with a note saying so.

    Raises
    ------
    NotebookError: a solution notebook failed (names the notebook and cell), or the kernel died
        or did not start.
    WarehouseError: the tables could not be set aside (nothing changed) or put back (names the
        backup folder that holds them).
    """
    from medilake_lab.course import notebooks

    if not plan.rebuild:
        return [], None
    items = lab_items(later_labs(plan.rebuild[0].id))
    backup = backup_dir(f"catchup-{plan.target.id}", warehouse) if plan.replaced else None
    if backup:
        set_aside(plan.replaced, backup, warehouse)
        if console:
            console.print(f"set aside {len(plan.replaced)} table(s)/folder(s) in {escape(str(backup))}",
                          soft_wrap=True)
    reports = []
    try:
        with notebooks.WarmKernel(notebooks.notebooks_dir()) as kernel:
            for lab in plan.rebuild:
                notebooks.execute_lab(lab, warehouse=warehouse, data=data, console=console, kernel=kernel)
                reports.append(graded(lab.id, warehouse, data))
                if console:
                    console.print(f"  lab {lab.id}: {reports[-1].passed}/{reports[-1].total} checks pass")
    except BaseException as exc:
        _undo(exc, items, backup, warehouse)
        raise
    if config.warehouse_dir(warehouse) == config.warehouse_dir():
        progress.forget_grades([lab.id for lab in later_labs(plan.rebuild[0].id)])
    for report in reports:
        not_recorded = progress.record_report(report, by="catchup")
        if console:
            console.print(f"  lab {report.lab}: " + escape(not_recorded or "recorded as built by catchup"),
                              soft_wrap=True)
    return [lab.id for lab in plan.rebuild], backup


def _undo(exc: BaseException, items: list[LabItem], backup: Path | None,
          warehouse: str | os.PathLike | None, command: str = "catchup") -> None:
    """Remove what a failed rebuild (or ``run``) wrote and put the set-aside ``items`` back; note on
    ``exc`` what state the warehouse is in and what to do next."""
    root = config.warehouse_dir(warehouse)
    try:
        restore(items, backup, warehouse)
    except WarehouseError as failed:
        exc.add_note(f"{command} stopped half-way and {failed}.")
        return
    kept = "your tables are back as they were" if backup else "it holds no table of these labs, as before"
    exc.add_note(f"{command} stopped: in the warehouse {root} the tables of these labs are as before ({kept}; "
                 "progress unchanged); what a notebook changed in an earlier lab's tables (lab 03's OPTIMIZE and "
                 "VACUUM of silver, lab 07's erasure DELETEs) is not undone. "
                 f"Fix the cause above, then run the same {command} command again.")


def run_labs(labs: list[LabSpec], warehouse: str | os.PathLike | None = None,
             data: str | os.PathLike | None = None, learner: bool = False,
             console: Console | None = None) -> tuple[list[tuple[Path, float]], Path | None]:
    """Execute the notebooks of ``labs`` in order in one kernel (:class:`notebooks.WarmKernel`;
    ``learner``: the learner copies in ``labs/``) after moving the tables and folders they rewrite
    that already exist (:func:`replaced_by_run`) into a backup folder beside the warehouse. Returns
    ``([(executed notebook, seconds)], the backup folder or None)``.

    When a notebook fails (or the run is interrupted) and something was set aside, what the run
    wrote to these labs' tables is removed and the set-aside ones are moved back (the warehouse is
    as before; a note on the re-raised exception says so). With nothing set aside, a failed run
    leaves what it wrote, as a notebook run by hand does.

    Raises
    ------
    NotebookError: a notebook failed (names the notebook and cell), or its kernel died or did not start.
    WarehouseError: the tables could not be set aside (nothing changed) or put back (names the backup).
    """
    import time

    from medilake_lab.course import notebooks

    replaced = replaced_by_run(labs, warehouse)
    backup = backup_dir(f"run-{labs[0].id}", warehouse) if replaced else None
    if backup:
        set_aside(replaced, backup, warehouse)
    done = []
    try:
        with notebooks.WarmKernel(notebooks.notebooks_dir(learner)) as kernel:
            for lab in labs:
                start = time.perf_counter()
                out = notebooks.execute_lab(lab, warehouse=warehouse, data=data, learner=learner,
                                            console=console, kernel=kernel)
                done.append((out, time.perf_counter() - start))
                if console:
                    console.print(f"  [green]done[/] in {done[-1][1]:.0f} s → {escape(str(out))}")
    except BaseException as exc:
        if backup:
            _undo(exc, lab_items(labs), backup, warehouse, command="run")
        raise
    return done, backup


def replaced_by_run(labs: list[LabSpec], warehouse: str | os.PathLike | None = None) -> list[LabItem]:
    """The tables and folders of ``labs`` already in the warehouse: running their notebooks
    rewrites them."""
    return existing(lab_items(labs), warehouse)


@dataclass(frozen=True)
class LabStatus:
    """One row of ``medilake_lab status``."""

    lab: LabSpec
    grade: str          # "7/9", "16/16 by catchup", or "—" when never graded
    last_run: str
    quiz: str           # best quiz score "18/20" or "—"
    done: bool


def _todo(lab: LabSpec, grade: dict | None, quiz: dict | None) -> tuple[str, str] | None:
    """What is left to do in one lab as ``(what, command)``, or None."""
    if not grade:
        return (f"open labs/{lab.notebook} (make lab), do its TODOs, then grade it",
                f"medilake_lab check {lab.id}")
    if grade["passed"] != grade["total"]:
        return f"fix lab {lab.id}", f"medilake_lab hint {lab.id}"
    if not quiz and grade.get("by") != "catchup":
        return f"take the lab {lab.id} quiz", f"medilake_lab quiz {lab.id}"
    return None


def status(state: str | os.PathLike | None = None) -> tuple[list[LabStatus], tuple[str, str]]:
    """Rows for every lab from the progress file, and the next step as ``(what, command)``.

    The next step is found from the lab graded most recently (lab 01 when none was): the
    first lab from there on, then wrapping round to the earlier ones, that is not passed (fix
    it, or open it if never graded) or whose quiz is not taken (labs built by catchup are not
    quizzed); when there is none, a mock exam.

    Raises
    ------
    ProgressFileError: the progress file cannot be read (names the file and the fix).
    """
    data = progress.load(state)
    labs = list(all_labs())
    rows = []
    for lab in labs:
        grade = data["labs"].get(lab.id)
        quiz = data["quizzes"].get(lab.id)
        rows.append(LabStatus(
            lab, (f"{grade['passed']}/{grade['total']}"
                  + (f" by {grade['by']}" if grade.get("by") else "")) if grade else "—",
            grade["last_run"][:16].replace("T", " ") if grade else "—",
            f"{quiz['best']}/{quiz['total']}" if quiz else "—",
            bool(grade) and grade["passed"] == grade["total"]))
    graded = [(data["labs"][lab.id]["last_run"], i) for i, lab in enumerate(labs)
              if lab.id in data["labs"]]
    start = max(graded)[1] if graded else 0
    for lab in labs[start:] + labs[:start]:
        step = _todo(lab, data["labs"].get(lab.id), data["quizzes"].get(lab.id))
        if step:
            return rows, step
    return rows, ("all labs done — try a mock exam", "medilake_lab exam associate")


def next_hint(lab_id: str, check_id: str | None = None,
              warehouse: str | os.PathLike | None = None,
              data: str | os.PathLike | None = None) -> tuple[CheckResult | None, list[str]]:
    """The first failing check of a lab (or ``check_id``) and its hints up to the next level.

    Each call for the same check reveals one more level: 1 the finding and hint, 2 the exam
    rule, 3 (the last, repeated on later calls) that there are no more hints and where the
    solution is. Returns ``(None, [])`` when every check passes.

    Raises
    ------
    LabNotFoundError, CheckNotFoundError: unknown lab or check id.
    ProgressFileError: the progress file (which counts the levels) cannot be read, checked
        before grading, or written.
    """
    lab = get_lab(lab_id)
    wanted = f"{lab.id}.{check_id}" if check_id and "." not in check_id else check_id
    if wanted and wanted not in {f"{lab.id}.{c.id}" for c in lab.checks}:
        known = ", ".join(c.id for c in lab.checks)
        raise CheckNotFoundError(f"lab {lab.id} has no check {check_id!r}; checks: {known}")
    state = progress.load()
    report = graded(lab.id, warehouse, data)
    candidates = [r for r in report.results
                  if (r.id == wanted if wanted else r.status is Status.FAIL)]
    if not candidates:
        return None, []
    result = candidates[0]
    seen = state.setdefault("hints", {}).get(result.id, 0)
    level = min(seen + 1, HINT_LEVELS)
    state["hints"][result.id] = level
    progress.save(state)
    lines = [f"{result.finding}", f"hint: {result.hint}"]
    if level >= 2:
        lines.append(f"exam rule: {result.rule}")
    if level >= HINT_LEVELS:
        later = [x.id for x in all_labs() if x.id > lab.id]
        rebuild = f" (`medilake_lab catchup {later[0]}` rebuilds this lab from it)" if later else ""
        lines.append(f"no more hints for {result.id}; the solution is in "
                     f"{Path('solutions') / lab.notebook}{rebuild}")
    return result, lines
