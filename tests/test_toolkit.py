"""The grader toolkit and check context, without a JVM: words of findings, the timestamp rule, the
expected-vs-observed comparison (naming rows that hold another version of their record), per-run
memoisation and the hints derived from the lab list."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from medilake_lab.contract import feeds
from medilake_lab.contract.labs import all_labs
from medilake_lab.errors import ColumnsMissing, MediLakeError, MissingTables
from medilake_lab.grader import Context, lab02, toolkit
from medilake_lab.grader.context import build_hint
from medilake_lab.grader.reference import silver as ref


def test_words_of_findings() -> None:
    assert toolkit.n(12345) == "12,345" and toolkit.plural(1, "delete") == "1 delete"
    assert toolkit.plural(2, "delete") == "2 deletes" and toolkit.kb(2048) == "2.0 KB"
    assert toolkit.pct(0.25) == "25%"
    assert [toolkit.fmt(v) for v in (None, True, 1.234567, date(2025, 1, 2), ("a", "b"), "x")] == [
        "null", "true", "1.235", "2025-01-02", "[a, b]", "x"]
    assert toolkit.fmt(datetime(2025, 1, 2, 3, 4, 5, 600)) == "2025-01-02 03:04:05"
    same_day = [datetime(2025, 1, 2, 3), datetime(2025, 1, 2, 9)]
    assert toolkit.days([datetime(2025, 1, 2), datetime(2025, 2, 3)]) == "2025-01-02, 2025-02-03"
    assert toolkit.days(same_day) == "2025-01-02 03:00:00, 2025-01-02 09:00:00"
    assert toolkit.key_text(("E1",)) == "E1" and toolkit.key_text(("F1", date(2025, 1, 1))) == "(F1, 2025-01-01)"


def test_one_timestamp_rule() -> None:
    aware = pa.array([datetime(2025, 1, 2, 3, tzinfo=UTC)], pa.timestamp("us", tz="UTC"))
    nanos = pa.array([datetime(2025, 1, 2, 3)], pa.timestamp("ns"))
    table = toolkit.naive_utc(pa.table({"a": aware, "b": nanos, "s": pa.array(["x"], pa.large_string()),
                                        "i": [1]}))
    assert table.schema.types == [pa.timestamp("us"), pa.timestamp("us"), pa.string(), pa.int64()]
    assert table["a"][0].as_py() == datetime(2025, 1, 2, 3)  # the same instant, as UTC wall time
    assert toolkit.connect(t=table).execute("SELECT a = b FROM t").fetchone() == (True,)


def test_compare_names_first_differing_rows() -> None:
    expected = pa.table({"k": ["a", "b", "c"], "v": [1.0, 2.0, 3.0], "n": [1, 2, 3]})
    observed = pa.table({"k": ["a", "b", "b", "d"], "v": [1.0 + 1e-12, 2.5, 2.0, 4.0], "n": [1, 2, 2, 4]})
    diff = toolkit.compare("gold.t", observed, expected, ["k"], ["v", "n"], rel_tol=1e-6)
    assert not diff.ok and diff.duplicates == 1 and diff.missing == [("c",)] and diff.extra == [("d",)]
    assert diff.columns == {"v": [(("b",), 2.5, 2.0)], "n": []}
    text = toolkit.describe(diff, lambda column, bad: "a known mistake" if column == "v" else "")
    assert text == ("gold.t: 1 duplicate key(s) ('k',); 1 expected row(s) missing, e.g. c; 1 unexpected "
                    "row(s), e.g. d; v differs on 1 of 3 rows: b observed 2.5, expected 2 — a known mistake")
    assert toolkit.compare("gold.t", expected, expected, ["k"], ["v", "n"]).ok


def _slow_compare(monkeypatch: pytest.MonkeyPatch, *args, **kwargs) -> toolkit.Diff:
    """compare() without its identical-tables shortcut."""
    with monkeypatch.context() as m:
        m.setattr(toolkit, "_identical", lambda *a: False)
        return toolkit.compare(*args, **kwargs)


def test_compare_takes_its_shortcut_only_when_the_row_by_row_path_finds_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    nan = float("nan")
    expected = pa.table({"k": ["b", "a", None], "v": [2.0, 1.0, 3.0], "n": pa.array([2, 1, 3], pa.int64()),
                         "when": pa.array([datetime(2025, 1, 2), datetime(2025, 1, 1), None], pa.timestamp("us")),
                         "codes": [["x", "y"], ["z"], []]})
    same_other_order = expected.take([2, 0, 1]).set_column(2, "n", pa.array([3, 2, 1], pa.int32()))
    twice = expected.take([0, 0, 1])  # key b twice, on both sides
    with_nan = expected.set_column(1, "v", pa.array([nan, 1.0, 3.0]))  # on both sides
    cases = {  # observed → whether the shortcut may say "identical"
        "same rows, other order and int width": (same_other_order, True),
        "one value off": (expected.set_column(1, "v", pa.array([2.0, 1.5, 3.0])), False),
        "within the tolerance only": (expected.set_column(1, "v", pa.array([2.0, 1.0 + 1e-12, 3.0])), False),
        "a duplicate key": (twice, False),
        "NaN": (with_nan, False),
        "list in another order": (expected.set_column(4, "codes", pa.array([["y", "x"], ["z"], []])), False),
        "timestamp with a zone": (expected.set_column(3, "when", pa.array(
            [datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC), None], pa.timestamp("us", "UTC"))),
            False),
    }
    columns = ["v", "n", "when", "codes"]
    for case, (observed, identical) in cases.items():
        exp = observed if observed is twice or observed is with_nan else expected
        assert toolkit._identical(observed, exp, ("k",), columns) is identical, case
        fast = toolkit.compare("t", observed, exp, ["k"], columns, rel_tol=1e-6)
        slow = _slow_compare(monkeypatch, "t", observed, exp, ["k"], columns, rel_tol=1e-6)
        assert repr((fast.ok, fast.rows, fast.duplicates, fast.missing, fast.extra, fast.columns)) == \
            repr((slow.ok, slow.rows, slow.duplicates, slow.missing, slow.extra, slow.columns)), case  # NaN
        assert repr(dict(fast.expected)) == repr(dict(slow.expected)), case  # built on first use after the shortcut
    assert toolkit.compare("t", same_other_order, expected, ["k"], columns).ok


def test_compare_names_another_version_of_the_record() -> None:
    old, new = datetime(2025, 3, 1, 8), datetime(2025, 3, 4, 10)
    versions = pa.table({"id": ["E1", "E1", "E2"], "discharge": [None, new, new], "updated_at": [old, new, new]})
    expected = pa.table({"id": ["E1", "E2"], "discharge": [new, new], "updated_at": [new, new], "los": [3, 0]})
    observed = pa.table({"id": ["E1", "E2"], "discharge": [None, new], "updated_at": [old, new], "los": [None, 1]})
    diff = toolkit.compare("silver.e", observed, expected, ["id"], ["los"], versions=versions)
    assert diff.other_version == {("E1",): (old, new)}
    assert diff.differing("los", same_version=True) == [(("E2",), 1, 0)]
    assert toolkit.version_cause(diff, "encounter", "02.latest_wins") == (
        "1 row hold an older delivered version of the record, e.g. encounter E1 holds the version updated "
        "2025-03-01 08:00:00, not the newest (2025-03-04 10:00:00) — the dedup keeps the wrong version; "
        "02.latest_wins explains")


# ------------------------------------------------------- a lab-02 check on a tiny warehouse (no JVM)


def _encounter(eid: str, when: str, op: str = "I", **changes: object) -> dict:
    row = {"encounter_id": eid, "patient_id": "P1", "encounter_class": "inpatient",
           "admission_type": "elective", "admit_ts": "2025-03-01T08:00:00Z", "discharge_ts": None,
           "facility_id": "F1", "facility_name": "General", "department": "medicine",
           "attending_provider_id": "D1", "discharge_disposition": None, "op": op, "updated_at": when}
    return row | changes


def _deliver(data: Path, batch: str, records: list[dict]) -> None:
    path = Path(feeds.FEEDS["encounters"].path(str(data), batch))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(("\n".join(json.dumps(r) for r in records) + "\n").encode()))


def _silver_encounters(warehouse: Path, rows: pa.Table) -> None:
    """Write rows as silver.encounters_clean, timestamps with a zone as Spark's ``timestamp``."""
    utc = pa.schema([pa.field(f.name, pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type) else f
                     for f in rows.schema])
    write_deltalake(str(warehouse / "silver" / "encounters_clean"), rows.cast(utc))


@pytest.fixture()
def stale_dedup(tmp_path: Path) -> tuple[Path, Path]:
    """Encounter E1 admitted, then discharged three days later (a newer version); a dedup that kept
    the OLDEST version of E1 (not discharged: length of stay null). E2 is right."""
    data = tmp_path / "data"
    _deliver(data, "001", [_encounter("E1", "2025-03-01T08:00:00Z"), _encounter("E2", "2025-03-01T09:00:00Z")])
    _deliver(data, "002", [_encounter("E1", "2025-03-04T10:00:00Z", "U", discharge_ts="2025-03-04T10:00:00Z",
                                      discharge_disposition="home")])
    expected = ref.expected_clean("encounters", data)
    oldest = {r["encounter_id"]: r for r in ref.records("encounters", data).to_pylist() if r["_batch"] == "001"}
    rows = [oldest[r["encounter_id"]] | {"length_of_stay_days": None} if r["encounter_id"] == "E1" else r
            for r in expected.to_pylist()]
    _silver_encounters(tmp_path / "wh", pa.Table.from_pylist(
        [{c: r[c] for c in expected.column_names} for r in rows], expected.schema))
    return tmp_path / "wh", data


def test_length_of_stay_names_the_dedup_not_the_formula(stale_dedup: tuple[Path, Path]) -> None:
    warehouse, data = stale_dedup
    outcome = lab02.length_of_stay(Context(warehouse, data, "02"))
    assert not outcome.passed
    assert outcome.finding == (
        "1 of 2 encounter rows have another length_of_stay_days: 1 row hold an older delivered version of the "
        "record, e.g. encounter E1 holds the version updated 2025-03-01 08:00:00, not the newest "
        "(2025-03-04 10:00:00) — the dedup keeps the wrong version; 02.latest_wins explains")
    assert "expected 3" not in outcome.finding  # not sent to the formula


def test_length_of_stay_formula_mistake_is_described(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _deliver(data, "001", [_encounter("E1", "2025-03-01T08:00:00Z", discharge_ts="2025-03-04T07:00:00Z")])
    expected = ref.expected_clean("encounters", data)
    hours = expected.set_column(expected.column_names.index("length_of_stay_days"), "length_of_stay_days",
                                pa.array([71], pa.int32()))
    _silver_encounters(tmp_path / "wh", hours)
    outcome = lab02.length_of_stay(Context(tmp_path / "wh", data, "02"))
    assert not outcome.passed and "E1: 71, expected 3 (admit 2025-03-01 08:00:00" in outcome.finding
    assert "older delivered version" not in outcome.finding


# -------------------------------------------------------------------------------- the context


def test_hints_derive_from_the_lab_list() -> None:
    labs = [lab.id for lab in all_labs()]
    first, second, last = labs[0], labs[1], labs[-1]
    bronze = next(t for t in all_labs()[0].tables)
    assert build_hint(bronze, first) == (f"run lab {first} (or `medilake_lab catchup {second}` to build it "
                                         "from the solutions)")
    assert build_hint(bronze, second).startswith(f"finish lab {first} (or `medilake_lab catchup {second}`")
    gold = all_labs()[-1].tables[0]
    assert build_hint(gold, last) == (f"run lab {last} (or `medilake_lab catchup {last}` to build labs "
                                      f"{first}–{labs[-2]} first; `medilake_lab run {last}` runs the solution)")


def test_require_and_rows(tmp_path: Path) -> None:
    ctx = Context(tmp_path, tmp_path, "02")
    with pytest.raises(MissingTables, match=r"silver.quarantine — run lab 02 \(or `medilake_lab catchup 03`"):
        ctx.require("silver.quarantine")
    assert issubclass(MissingTables, MediLakeError)
    write_deltalake(str(tmp_path / "silver" / "quarantine"), pa.table({"feed": ["x"]}))
    assert ctx.table("silver.quarantine") is None  # one run sees one state of the warehouse
    ctx = Context(tmp_path, tmp_path, "02")
    assert ctx.require("silver.quarantine").columns == ["feed"]
    assert ctx.rows("silver.quarantine", ["feed"]) is ctx.rows("silver.quarantine", ["feed"])
    with pytest.raises(ColumnsMissing, match="silver.quarantine lacks column.s. raw"):
        ctx.rows("silver.quarantine", ["feed", "raw"])
    outcome = ctx.tables_exist(["silver.quarantine", "silver.patients_scd"], "ok")
    assert not outcome.passed and outcome.finding.startswith("missing Delta table(s): silver.patients_scd — run lab 02")


def test_memo_builds_once_per_run(tmp_path: Path) -> None:
    calls: list[int] = []
    ctx = Context(tmp_path, tmp_path)
    assert ctx.memo("k", lambda: calls.append(1) or 7) == 7 and ctx.memo("k", lambda: 8) == 7
    assert Context(tmp_path, tmp_path).memo("k", lambda: 9) == 9 and calls == [1]


def test_unique_sorted_finds_a_repeated_composite_key_and_counts_null_as_a_value() -> None:
    def table(a: list, b: list) -> pa.Table:
        return pa.table({"a": pa.array(a, pa.string()), "b": pa.array(b, pa.int64())})

    cases = {  # rows, already sorted by (a, b) → unique?
        "distinct pairs sharing a": (table(["x", "x", "y"], [1, 2, 1]), True),
        "a pair twice": (table(["x", "x", "y"], [1, 1, 1]), False),
        "NULL b once per a": (table(["x", "y"], [None, None]), True),
        "(x, NULL) twice": (table(["x", "x"], [None, None]), False),
        "NULL beside a value": (table(["x", "x"], [1, None]), True),
        "one row": (table(["x"], [None]), True),
        "no rows": (table([], []), True),
    }
    for case, (rows, unique) in cases.items():
        assert toolkit._unique_sorted(rows, ("a", "b")) is unique, case
    assert toolkit._unique_sorted(table(["x", "x"], [1, 2]), ("a",)) is False
