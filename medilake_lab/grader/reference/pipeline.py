"""Lab 06's independent recomputation, with DuckDB from the raw files of lab 06's landing volume.

Lab 06's silver datasets are materialized views whose expectations (Lakeflow's names:
:mod:`medilake_lab.runtime.expectations`) are evaluated over the rows their query returns —
the *candidate rows* — and drop, keep or stop on the violating ones. The grader recomputes those
rows and the rules' verdicts from the landing files, never from the learner's bronze:

Candidate rows of ``silver.<feed>_dp`` (``feed``: encounters, lab_results)
    per business key its newest delivered version (greatest ``updated_at``, NULLs last; a tie
    goes to the earlier batch, then the earlier line) unless that version is a delete
    (``op = 'D'``), plus every line without a key — each malformed line (not a JSON object: a
    bronze row of NULLs with the line in ``_corrupt_record``) and each record whose key is null.
    Spark SQL of the solution: ``row_number() OVER (PARTITION BY <key> ORDER BY updated_at DESC,
    _batch_id)`` kept where ``<key> IS NULL OR _rn = 1``, and ``op IS DISTINCT FROM 'D'``.
Rules (:data:`RULES`; a rule whose constraint is NULL counts as failed, as the kit counts)
    ``well_formed`` (drop) ``_corrupt_record IS NULL``; ``required_fields`` (drop) lab 02's
    required fields not null; lab results also ``valid_loinc_code`` (drop) ``loinc_code`` in the
    kit's LOINC table, ``plausible_reference_range`` (warn) ``ref_low <= ref_high`` and
    ``known_operation`` (fail) ``op IS NULL OR op IN ('I', 'U', 'D')``.
Silver
    the candidate rows that pass every drop rule. On the lab's data no key's newest version is
    rejected while an older one is valid, so these are lab 02's clean rows
    (:func:`medilake_lab.grader.reference.silver.expected_clean`), which the grader compares
    silver with.
Gold (from lab 02's clean rows of the same files)
    ``gold.encounters_by_class_dp``: ``encounter_class``, ``encounters`` (rows), ``patients``
    (distinct ``patient_id``);
    ``gold.abnormal_results_by_test_dp``: ``loinc_code``, ``test_name``, ``results`` (rows),
    ``abnormal_results`` (``value < ref_low OR value > ref_high``).

``data`` is a data folder (``<warehouse>/volumes/lab06``: ``landing/<feed>/<feed>_<batch>.json.gz``);
``erased`` the patient ids of lab 07's erasure requests, whose lines count as never delivered
(passed on to :mod:`medilake_lab.grader.reference.silver`). Functions raise
:class:`medilake_lab.errors.DataError` when a feed has no file there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from medilake_lab.contract import codes, feeds
from medilake_lab.grader.reference import silver as ref
from medilake_lab.grader.toolkit import connect

Action = Literal["warn", "drop", "fail"]
#: The feeds whose silver materialized views carry expectations.
FEEDS: tuple[str, ...] = ("encounters", "lab_results")


@dataclass(frozen=True)
class Rule:
    """One expectation the lab asks for: ``name``, ``action`` (warn/drop/fail), ``constraint``
    (the SQL the lab states; DuckDB and Spark read it alike) and ``words`` (what it checks, for
    findings)."""

    name: str
    action: Action
    constraint: str
    words: str

    @property
    def passed(self) -> str:
        """SQL true exactly for the rows that pass (NULL fails)."""
        return f"coalesce(({self.constraint}), false)"


def _required(feed: str) -> Rule:
    fields = feeds.FEEDS[feed].required
    return Rule("required_fields", "drop", " AND ".join(f"{c} IS NOT NULL" for c in fields),
                f"{', '.join(fields)} not null")


def _loinc() -> Rule:
    listed = ", ".join(f"'{code}'" for code in sorted(codes.LOINC))
    return Rule("valid_loinc_code", "drop", f"loinc_code IN ({listed})",
                "loinc_code is a code of the lab's LOINC table")


_WELL_FORMED = Rule("well_formed", "drop", "_corrupt_record IS NULL",
                    "the line is a JSON object (_corrupt_record null)")

#: Feed → the expectations its silver materialized view must declare, in the lab's order.
RULES: dict[str, tuple[Rule, ...]] = {
    "encounters": (_WELL_FORMED, _required("encounters")),
    "lab_results": (_WELL_FORMED, _required("lab_results"), _loinc(),
                    Rule("plausible_reference_range", "warn", "ref_low <= ref_high", "ref_low <= ref_high"),
                    Rule("known_operation", "fail", "op IS NULL OR op IN ('I', 'U', 'D')", "op is I, U or D")),
}


def candidates(feed: str, data: str | os.PathLike | None = None, erased: frozenset[str] = frozenset()) -> pa.Table:
    """The candidate rows of ``silver.<feed>_dp`` (module docstring).

    Returns
    -------
    pa.Table: the feed's contract columns (typed as :func:`medilake_lab.grader.reference.silver.records`),
    ``_corrupt_record`` (string: the line, for malformed lines; else null), ``_batch`` (string) and
    ``_line`` (int64), ordered by batch and line.
    """
    key = feeds.FEEDS[feed].key
    con = connect(r=records(feed, data, erased), m=ref.malformed(feed, data, erased))
    return con.sql(f"""
        WITH newest AS (
            SELECT * FROM r WHERE {key} IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY updated_at DESC NULLS LAST, _batch, _line) = 1)
        SELECT * EXCLUDE (_raw, _reason), NULL::VARCHAR AS _corrupt_record FROM newest WHERE op IS DISTINCT FROM 'D'
        UNION ALL BY NAME
        SELECT * EXCLUDE (_raw, _reason), NULL::VARCHAR AS _corrupt_record FROM r WHERE {key} IS NULL
        UNION ALL BY NAME
        SELECT _batch, _line, _raw AS _corrupt_record FROM m
        ORDER BY _batch, _line""").to_arrow_table()


def records(feed: str, data: str | os.PathLike | None = None, erased: frozenset[str] = frozenset()) -> pa.Table:
    """Every parsed record of the feed (:func:`medilake_lab.grader.reference.silver.records`), without
    the erased patients' lines."""
    return ref.records(feed, data, erased)


def clean(feed: str, data: str | os.PathLike | None = None, erased: frozenset[str] = frozenset()) -> pa.Table:
    """Lab 02's clean rows of the feed (:func:`medilake_lab.grader.reference.silver.expected_clean`),
    without the erased patients' lines."""
    return ref.expected_clean(feed, data, erased=erased)


def batch_lines(feed: str, data: str | os.PathLike | None = None) -> dict[str, int]:
    """Batch → records of the feed's file (a non-blank line, or each object of a JSON array line),
    every one counted (erased patients' too: what a stream read before an erasure), from the parse
    the other functions share (one pass over the files)."""
    con = connect(r=ref.records(feed, data), m=ref.malformed(feed, data))
    rows = con.execute("SELECT _batch, count(*) FROM (SELECT _batch FROM r UNION ALL SELECT _batch FROM m) "
                       "GROUP BY _batch ORDER BY _batch").fetchall()
    return {str(batch): int(lines) for batch, lines in rows}


@dataclass(frozen=True)
class Counts:
    """What a silver flow's update must record: ``rows`` (candidate rows), ``failed`` (rule name →
    failing candidate rows), ``dropped`` (rows failing at least one drop rule) and ``kept``
    (``rows - dropped``: the rows silver holds)."""

    rows: int
    failed: dict[str, int]
    dropped: int

    @property
    def kept(self) -> int:
        return self.rows - self.dropped


def counts(feed: str, data: str | os.PathLike | None = None, erased: frozenset[str] = frozenset()) -> Counts:
    """The rules of :data:`RULES` ``[feed]`` over :func:`candidates`: passed/failed per rule and
    the rows dropped."""
    rules = RULES[feed]
    drops = " AND ".join(r.passed for r in rules if r.action == "drop") or "true"
    failed = ", ".join(f"count_if(NOT {r.passed})" for r in rules)
    con = connect(c=candidates(feed, data, erased))
    row = con.execute(f"SELECT count(*), count_if(NOT ({drops})), {failed} FROM c").fetchone()
    assert row is not None  # an aggregate returns one row
    return Counts(int(row[0]), {r.name: int(v) for r, v in zip(rules, row[2:], strict=True)}, int(row[1]))


def failing(feed: str, rows: pa.Table, rule: Rule) -> pa.Table:
    """The rows of ``rows`` (e.g. a learner's silver) that fail ``rule``; a rule over a column
    ``rows`` lacks is not evaluated (no row returned)."""
    con = connect(s=rows)
    try:
        return con.sql(f"SELECT * FROM s WHERE NOT {rule.passed}").to_arrow_table()
    except Exception:  # noqa: BLE001 - a column the rule needs is absent (e.g. _corrupt_record): nothing to judge
        return rows.slice(0, 0)


def gold(data: str | os.PathLike | None = None, erased: frozenset[str] = frozenset()) -> dict[str, pa.Table]:
    """The two gold materialized views recomputed from lab 02's clean rows of ``data``.

    Returns
    -------
    dict: ``"gold.encounters_by_class_dp"`` → ``encounter_class`` (string), ``encounters``, ``patients`` (int64);
    ``"gold.abnormal_results_by_test_dp"`` → ``loinc_code``, ``test_name`` (string), ``results``,
    ``abnormal_results`` (int64).
    """
    con = connect(e=clean("encounters", data, erased), l=clean("lab_results", data, erased))
    return {
        "gold.encounters_by_class_dp": con.sql(
            "SELECT encounter_class, count(*) AS encounters, count(DISTINCT patient_id) AS patients FROM e "
            "GROUP BY ALL").to_arrow_table(),
        "gold.abnormal_results_by_test_dp": con.sql(
            "SELECT loinc_code, test_name, count(*) AS results, count_if(value < ref_low OR value > ref_high)::BIGINT "
            "AS abnormal_results FROM l GROUP BY ALL").to_arrow_table(),
    }
