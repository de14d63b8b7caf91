"""Expectations for Spark Declarative Pipelines, with Lakeflow's names (lab 06).

Open-source SDP has no expectations. These decorators go between ``@dp.table`` /
``@dp.materialized_view`` and the query function, as in Lakeflow::

    @dp.materialized_view(name="silver.lab_results_dp")
    @expect("plausible_reference_range", "ref_low <= ref_high")
    @expect_or_drop("value_present", "value IS NOT NULL")
    def lab_results(): ...

What SDP allows (pyspark 4.2.0): a query function runs **once, on the client, when the graph is
registered** (``SparkConnectGraphElementRegistry.register_flow`` calls it to get a plan); the
server then runs that plan for every update. So a decorator can change the plan — that is
where ``drop`` (a filter) and ``fail`` (``raise_error`` on the first violating row, which fails
the flow and so the update) happen, inside the pipeline — but it cannot run code per update:
no counts can be taken or written from inside a flow (eager commands there fail with
``UNSUPPORTED_PIPELINE_SPARK_SQL_COMMAND``; observed metrics reach only server-side listeners).
The counts are taken by the kit's client after the update, in the same Spark Connect session
(:func:`count`, called by :mod:`medilake_lab.runtime.sdp_driver`), from the rule text
evaluated by Spark SQL over the flow's input, and appended to the pipeline's event log
(:mod:`medilake_lab.runtime.event_log`) in the shape of Lakeflow's ``flow_progress`` data-quality
details.

As in Lakeflow, a rule applies to the rows the decorated query returns. Lab 06 declares its rules
on the silver materialized views themselves, whose query returns the candidate rows (newest
version per key, deletes left out, plus every line without a key), which is what ``check 06``
recomputes; rules on a ``@dp.temporary_view`` upstream would count other rows.

A constraint that evaluates to NULL counts as failed (kept by ``expect``, dropped by
``expect_or_drop``, stops the update under ``expect_or_fail``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Action = Literal["warn", "drop", "fail"]
ATTRIBUTE = "__medilake_expectations__"


@dataclass(frozen=True)
class Expectation:
    """One declared rule: ``name`` (unique per dataset), ``constraint`` (a Spark SQL boolean
    expression over the query's columns) and ``action`` (``warn`` / ``drop`` / ``fail``)."""

    name: str
    constraint: str
    action: Action

    def passed(self) -> str:
        """SQL that is true exactly for the rows that pass (NULL fails)."""
        return f"coalesce(({self.constraint}), false)"


def _decorator(rules: Mapping[str, str], action: Action) -> Callable[[Callable], Callable]:
    new = [Expectation(name, constraint, action) for name, constraint in rules.items()]

    def wrap(query: Callable) -> Callable:
        source = getattr(query, "__wrapped__", query)
        declared = [*getattr(query, ATTRIBUTE, ()), *new]
        names = [e.name for e in declared]
        if len(set(names)) != len(names):
            raise ValueError(f"{source.__name__}: expectation names must be unique, got {names}")

        def decorated() -> Any:
            from pyspark.sql import functions as F

            df = source()
            for rule in declared:
                if rule.action == "drop":
                    df = df.where(rule.passed())
                elif rule.action == "fail":
                    message = f"expectation {rule.name!r} ({rule.constraint}) violated: update stopped"
                    df = df.where(F.when(F.expr(rule.passed()), F.lit(True))
                                  .otherwise(F.raise_error(F.lit(message))))
            return df

        decorated.__name__ = source.__name__  # SDP names the dataset after the function
        decorated.__wrapped__ = source  # type: ignore[attr-defined]
        setattr(decorated, ATTRIBUTE, declared)
        return decorated

    return wrap


def expect(name: str, constraint: str) -> Callable[[Callable], Callable]:
    """Keep violating rows; count them."""
    return _decorator({name: constraint}, "warn")


def expect_or_drop(name: str, constraint: str) -> Callable[[Callable], Callable]:
    """Drop violating rows before the write; count them."""
    return _decorator({name: constraint}, "drop")


def expect_or_fail(name: str, constraint: str) -> Callable[[Callable], Callable]:
    """Stop the update at the first violating row (the flow fails)."""
    return _decorator({name: constraint}, "fail")


def expect_all(rules: Mapping[str, str]) -> Callable[[Callable], Callable]:
    """:func:`expect` for each ``name → constraint``."""
    return _decorator(rules, "warn")


def expect_all_or_drop(rules: Mapping[str, str]) -> Callable[[Callable], Callable]:
    """:func:`expect_or_drop` for each ``name → constraint``."""
    return _decorator(rules, "drop")


def expect_all_or_fail(rules: Mapping[str, str]) -> Callable[[Callable], Callable]:
    """:func:`expect_or_fail` for each ``name → constraint``."""
    return _decorator(rules, "fail")


def declared(query: Callable) -> list[Expectation]:
    """The expectations a (decorated) query function carries, innermost first."""
    return list(getattr(query, ATTRIBUTE, ()))


@dataclass(frozen=True)
class Counts:
    """Expectation counts of one flow update: ``rows`` the flow's input rows (int), ``failed`` rule
    name → rows failing it (int), ``dropped`` rows failing at least one drop rule (int)."""

    rows: int
    failed: Mapping[str, int]
    dropped: int


def count(query: Callable) -> Counts:
    """Recompute the expectation counts of a decorated query function with Spark SQL.

    The undecorated query (``__wrapped__``) is evaluated once more, after the update, in the
    driver's Spark Connect session: for a batch flow (materialized view, view over tables) that
    is exactly the input the update read. A streaming flow would need only the update's new input
    (the files in its checkpoint's offsets), which this does not do: keep expectations on batch
    flows. Each rule is counted with ``count_if(NOT coalesce(rule, false))`` (NULL fails).

    Raises
    ------
    pyspark's AnalysisException: a constraint does not compile against the query's columns.
    """
    from pyspark.sql import functions as F

    rules = declared(query)
    source = getattr(query, "__wrapped__", query)()
    aggregates = [F.count(F.lit(1)).alias("_rows")]
    aggregates += [F.count_if(~F.expr(r.passed())).alias(f"f{i}") for i, r in enumerate(rules)]
    drops = [r.passed() for r in rules if r.action == "drop"]
    aggregates.append(F.count_if(~F.expr(" AND ".join(drops))).alias("_dropped") if drops
                      else F.lit(0).alias("_dropped"))
    row = source.agg(*aggregates).first().asDict()
    return Counts(row["_rows"], {r.name: row[f"f{i}"] for i, r in enumerate(rules)}, row["_dropped"])
