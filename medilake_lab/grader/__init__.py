"""The grader: ``grade(lab)`` runs a lab's checks (listed in ``labs.yaml``) against a warehouse.

Each lab has a module ``lab<NN>`` whose functions are registered with :func:`check` under the
ids used in ``labs.yaml``. A check returns an :class:`Outcome`; the runner adds title, hint and
rule from the metadata, skips checks whose prerequisites failed, and turns a kit error (e.g.
:class:`medilake_lab.errors.MissingTables` from ``ctx.require``, whose message carries the hint
that builds the table) into a FAIL with its message and any unexpected error into a FAIL naming
it — the grader never shows a traceback. A damaged table
(:class:`medilake_lab.errors.DamagedTableError`: table, file and fix) is described in full by the
first check that needs it; later ones say "damaged (see <that check>)" — so is a table the grader's
reader cannot read (:class:`medilake_lab.errors.UnreadableTableError`: deletion vectors, with the
fix). Shared helpers of the check modules: :mod:`medilake_lab.grader.commits` (what a Delta commit
means) and :mod:`medilake_lab.grader.toolkit` (findings' words, timestamps, DuckDB, expected vs observed).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from medilake_lab.errors import DamagedTableError, MediLakeError
from medilake_lab.grader.model import CheckResult, LabReport, Outcome, Status

if TYPE_CHECKING:
    from medilake_lab.contract.labs import LabSpec
    from medilake_lab.grader.context import Context

CheckFn = Callable[["Context"], Outcome]
_REGISTRY: dict[str, CheckFn] = {}

__all__ = ["CheckResult", "Context", "LabReport", "Outcome", "Status", "check", "grade",
           "grade_all", "registered"]


def __getattr__(name: str) -> Any:
    """``Context`` on first use: it imports pyarrow, DuckDB and delta-rs, which a re-grade answered
    from :mod:`medilake_lab.grader.verdicts` (or code that only needs :class:`Status`) never needs."""
    if name == "Context":
        from medilake_lab.grader.context import Context
        return Context
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check(full_id: str) -> Callable[[CheckFn], CheckFn]:
    """Register a check function under ``"<lab>.<check>"``, e.g. ``@check("01.append_only")``."""
    def decorator(fn: CheckFn) -> CheckFn:
        _REGISTRY[full_id] = fn
        return fn
    return decorator


def registered(lab: LabSpec) -> dict[str, CheckFn]:
    """Check functions of a lab, importing its module ``medilake_lab.grader.lab<NN>``."""
    importlib.import_module(f"medilake_lab.grader.lab{lab.id}")
    return {k: v for k, v in _REGISTRY.items() if k.startswith(f"{lab.id}.")}


def grade(lab_id: str, warehouse: str | os.PathLike | None = None,
          data: str | os.PathLike | None = None) -> LabReport:
    """Grade one lab. Raises LabNotFoundError for an unknown id; never raises for bad tables."""
    from medilake_lab.contract.labs import get_lab
    from medilake_lab.grader.context import Context

    lab = get_lab(lab_id)
    broken: str | None = None  # why the lab's checks module could not be imported
    try:
        functions = registered(lab)
    except Exception as exc:  # noqa: BLE001 - a broken checks module is every check's FAIL
        functions = {}
        broken = f"checks module medilake_lab.grader.lab{lab.id} failed to import: {type(exc).__name__}: {exc}"
    ctx = Context(warehouse, data, lab.id)
    report = LabReport(lab.id, lab.title, warehouse=ctx.warehouse, data=ctx.data, cacheable=broken is None)
    status_of: dict[str, Status] = {}
    damaged: dict[str, str] = {}  # damaged table → the check whose finding describes it
    for spec in lab.checks:
        full_id = f"{lab.id}.{spec.id}"
        failed_deps = [d for d in spec.depends if status_of.get(d) is not Status.PASS]
        if failed_deps:
            status, finding = Status.SKIP, f"skipped: needs {', '.join(failed_deps)} to pass first"
        elif full_id not in functions:
            status, finding = Status.FAIL, broken or f"no grader function registered for {full_id}"
        else:
            try:
                outcome = functions[full_id](ctx)
                status = Status.PASS if outcome.passed else Status.FAIL
                finding = outcome.finding
            except DamagedTableError as exc:
                first = damaged.setdefault(exc.name, full_id)
                status = Status.FAIL
                finding = str(exc) if first == full_id else f"{exc.name} {exc.state} (see {first})"
            except MediLakeError as exc:
                status, finding = Status.FAIL, str(exc)
            except Exception as exc:  # noqa: BLE001 - a grader must report, not crash
                status, finding = Status.FAIL, f"could not inspect: {type(exc).__name__}: {exc}"
                report.cacheable = False  # perhaps transient (memory, open files): grade again next time
        status_of[spec.id] = status
        report.results.append(CheckResult(full_id, spec.title, status, finding, spec.hint.strip(),
                                          spec.rule.strip()))
    report.valid_until = ctx.valid_until
    return report


def grade_all(warehouse: str | os.PathLike | None = None,
              data: str | os.PathLike | None = None) -> list[LabReport]:
    """Grade every lab in course order."""
    from medilake_lab.contract.labs import all_labs

    return [grade(lab.id, warehouse, data) for lab in all_labs()]
