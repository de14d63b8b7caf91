"""MediLake Lab: an offline Delta Lake exam-prep lab kit (bronze → silver → gold EHR lakehouse).

The package is grouped by concern; arrows only point down this list:

* ``cli`` — the ``medilake_lab`` command;
* ``course`` — notebooks (run, build learner versions), workflow (status, hint, reset, catch-up),
  learner progress, the kit's self-check;
* ``quiz`` — question banks, terminal quizzes and mock exams, the notebook widget;
* ``grader`` — the check runner, context, result model and rendering, the Delta log reader
  (``grader.delta``), one module per lab, and independent reference results (``grader.reference``);
* ``datagen`` and ``importers`` — the synthetic raw feeds and external formats (Synthea);
* ``runtime`` — paths, Java and the Delta jars, the Spark session, doctor;
* ``contract`` — the raw-feed contract, the code tables and the lab list (``labs.yaml``);
* ``errors`` — every exception the kit raises on purpose.

Notebooks use the short names below, which stay put when modules move::

    from medilake_lab import config, feeds, get_spark, grade, show, show_quiz
    from medilake_lab import deliver, prepare_landing   # lab 05: the growing landing volume
    from medilake_lab import plot_architecture                      # each lab's slice of the picture
    from medilake_lab import plot_deliveries, plot_delta_log       # lab 01's pictures
    from medilake_lab import plot_versions_per_key, plot_merge_metrics, plot_scd2_timeline  # lab 02's
    from medilake_lab import plot_refresh_cost, plot_patient_files   # lab 07's pictures
"""

from __future__ import annotations

import importlib
import time

__version__ = "0.1.0"
#: When this process imported the package (ns since the epoch): package files changed later may
#: not be the code it runs (:mod:`medilake_lab.grader.verdicts` then keeps no report).
IMPORTED_NS = time.time_ns()

#: Stable public name → "module" (the name is that module) or "module:attribute". Loaded on first
#: use (PEP 562), so that ``import medilake_lab`` stays cheap for the CLI and the grader.
_EXPORTS = {
    "codes": "medilake_lab.contract.codes", "feeds": "medilake_lab.contract.feeds",
    "config": "medilake_lab.runtime.config",
    "get_spark": "medilake_lab.runtime.spark:get_spark", "files_read": "medilake_lab.runtime.spark:files_read",
    "grade": "medilake_lab.grader.verdicts:graded", "show": "medilake_lab.grader.render:show",
    "open_table": "medilake_lab.grader.delta:open_table",
    "data_as_of": "medilake_lab.grader.reference.silver:as_of_date",
    "show_quiz": "medilake_lab.quiz:show_quiz", "todo": "medilake_lab.course.todo:todo",
    "deliver": "medilake_lab.datagen.delivery:deliver",
    "prepare_landing": "medilake_lab.datagen.delivery:prepare_landing",
    "plot_architecture": "medilake_lab.course.architecture:plot_architecture",
    **{name: f"medilake_lab.course.plots:{name}" for name in (
        "plot_deliveries", "plot_delta_log", "plot_versions_per_key", "plot_merge_metrics", "plot_scd2_timeline")},
    "plot_refresh_cost": "medilake_lab.course.plots:plot_refresh_cost",
    "plot_patient_files": "medilake_lab.course.plots:plot_patient_files",
}


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attribute = _EXPORTS[name].partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attribute) if attribute else loaded


__all__ = sorted(_EXPORTS)
