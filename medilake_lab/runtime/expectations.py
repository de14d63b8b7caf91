"""Expectations for Spark Declarative Pipelines, with Lakeflow's names (SPIKE: a sketch, lab 06).

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
(:func:`record_counts`, called by :mod:`medilake_lab.runtime.sdp_driver`), from the rule text
evaluated by Spark SQL over the flow's input, and appended to the pipeline's event-log Delta
table in the shape of Lakeflow's ``flow_progress`` data-quality details.

A constraint that evaluates to NULL counts as failed (kept by ``expect``, dropped by
``expect_or_drop``, stops the update under ``expect_or_fail``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
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


def flow_progress(spark: Any, pipeline: str, update_id: str, flow: str, dataset: str,
                  query: Callable) -> dict:
    """One ``flow_progress`` event for a batch flow (materialized view): its expectations'
    passed/failed counts over the flow's whole input, recomputed with Spark SQL.

    ``query`` is the decorated function; its undecorated source is evaluated again, outside the
    pipeline (the input tables exist now). Streaming flows would need the update's input only
    (the Delta versions / files in the flow's checkpoint offsets): not done in this sketch.
    Returns the event as a dict (``details`` is a JSON string shaped like Lakeflow's).
    """
    from pyspark.sql import functions as F

    rules = declared(query)
    source = getattr(query, "__wrapped__", query)()
    aggregates = [F.count(F.lit(1)).alias("_rows")]
    aggregates += [F.count_if(~F.expr(r.passed())).alias(f"f{i}") for i, r in enumerate(rules)]
    drops = [r.passed() for r in rules if r.action == "drop"]
    if drops:
        aggregates.append(F.count_if(~F.expr(" AND ".join(drops))).alias("_dropped"))
    row = source.agg(*aggregates).first().asDict()
    expectations = [{"name": r.name, "dataset": dataset, "passed_records": row["_rows"] - row[f"f{i}"],
                     "failed_records": row[f"f{i}"]} for i, r in enumerate(rules)]
    details = {"flow_progress": {"status": "COMPLETED", "data_quality": {
        "dropped_records": row.get("_dropped", 0), "expectations": expectations}}}
    return {"id": str(uuid.uuid4()), "timestamp": datetime.now(UTC).replace(tzinfo=None),
            "event_type": "flow_progress", "level": "INFO",
            "origin": {"pipeline_name": pipeline, "update_id": update_id, "flow_name": flow,
                       "dataset_name": dataset},
            "details": json.dumps(details)}


EVENT_LOG_SCHEMA = ("id STRING, timestamp TIMESTAMP, event_type STRING, level STRING, "
                    "origin STRUCT<pipeline_name: STRING, update_id: STRING, flow_name: STRING, "
                    "dataset_name: STRING>, details STRING")


def record_counts(spark: Any, pipeline: str, flows: Mapping[str, tuple[str, Callable]], event_log: str) -> int:
    """Append one ``flow_progress`` event per flow with expectations to the event-log Delta
    table at ``event_log`` (a path); ``flows``: flow name → (target dataset, decorated query).
    Returns the number of events written."""
    update_id = str(uuid.uuid4())
    events = [flow_progress(spark, pipeline, update_id, flow, dataset, query)
              for flow, (dataset, query) in flows.items()]
    if events:
        spark.createDataFrame(events, EVENT_LOG_SCHEMA).write.format("delta").mode("append").save(event_log)
    return len(events)
