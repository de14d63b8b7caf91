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
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Stable public name → the module that defines it. Loaded on first use (PEP 562), so that
#: ``import medilake_lab`` stays cheap for the CLI and the grader.
_EXPORTS = {
    "codes": "medilake_lab.contract", "feeds": "medilake_lab.contract",
    "config": "medilake_lab.runtime",
    "get_spark": "medilake_lab.runtime.spark", "files_read": "medilake_lab.runtime.spark",
    "grade": "medilake_lab.grader", "show": "medilake_lab.grader.render",
    "open_table": "medilake_lab.grader.delta",
    "data_as_of": "medilake_lab.grader.reference.silver",
    "show_quiz": "medilake_lab.quiz",
}
_RENAMED = {"data_as_of": "as_of_date"}


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    return getattr(module, _RENAMED.get(name, name))


__all__ = sorted(_EXPORTS)
