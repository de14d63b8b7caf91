"""Lab 02 grader on small fixture tables, no JVM: the correct silver tables pass every check, and
each realistic wrong answer (the mistakes of tests/silver_variants.py and more, rebuilt with
delta-rs) fails the right check with a finding that names the table and what was observed."""

from __future__ import annotations

import gc
import gzip
import json
import shutil
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fast import deltafix as dx
from fast import medallion as fix
from fast.conftest import copy_of
from fast.grading import Wrong, assert_all_pass, assert_wrong
from medilake_lab import grader
from medilake_lab.contract import feeds
from medilake_lab.contract.labs import get_lab
from medilake_lab.grader.delta import open_table
from medilake_lab.grader.reference import silver as ref

LAB = "02"


# -- how a learner builds a clean table: valid rows of each batch, derived columns, MERGE ------------

def _valid(feed: str, batch: str, data: Path, *, check_codes: bool = True) -> pa.Table:
    """Records of one batch with every required field (and, unless ``check_codes`` is off, a
    valid code): what the learner's validation keeps, with ``op``."""
    where = "_reason IS NULL" if check_codes else "(_reason IS NULL OR _reason LIKE 'invalid %')"
    return ref.connect(r=ref.records(feed, data)).sql(
        f"SELECT * EXCLUDE (_batch, _line, _raw, _reason) FROM r WHERE _batch = '{batch}' AND {where}"
    ).to_arrow_table()


def _silver_rows(feed: str, rows: pa.Table, data: Path, columns: list[str]) -> pa.Table:
    """The learner's derived columns (computed correctly), the table's ``columns`` plus ``op``."""
    as_of = ref.as_of_date(data).isoformat()
    derived = {
        "length_of_stay_days": "CAST(date_diff('day', CAST(admit_ts AS DATE), CAST(discharge_ts AS DATE)) AS INT)",
        "abnormal_flag": "CASE WHEN value > ref_high THEN 'H' WHEN value < ref_low THEN 'L' ELSE 'N' END",
        "is_active": f"start_date <= DATE '{as_of}' AND (end_date IS NULL OR end_date > DATE '{as_of}')",
        "is_chronic": "is_chronic = 'Y'",
    }
    select = ", ".join(f"{derived[c]} AS {c}" if c in derived else c for c in columns)
    return fix.utc(ref.connect(r=rows).sql(f"SELECT {select}, op FROM r").to_arrow_table())


def _dedup(rows: pa.Table, key: str, keep: str = "newest") -> pa.Table:
    order = "DESC" if keep == "newest" else "ASC"
    return ref.connect(r=rows).sql(f"SELECT * FROM r QUALIFY row_number() OVER (PARTITION BY {key} "
                                   f"ORDER BY updated_at {order}) = 1").to_arrow_table()


def _columns(warehouse: Path, name: str) -> list[str]:
    return open_table(name, warehouse).columns


def learner_merge(warehouse: Path, data: Path, feed: str, *, newer_check: bool = True,
                  apply_deletes: bool = True, update: bool = True, keep: str = "newest",
                  check_codes: bool = True) -> None:
    """Rebuild silver.<feed>_clean the way silver_variants.merge_batches does: create the table
    empty, then per batch dedup (``keep`` the newest or oldest row per key) and MERGE with the
    chosen clauses (the "source is newer" guard, the delete clause, the update clause)."""
    name = f"silver.{feed}_clean"
    columns, key = _columns(warehouse, name), feeds.FEEDS[feed].key
    path = dx.table_dir(warehouse, name)
    shutil.rmtree(path)
    sources = {b: _silver_rows(feed, _dedup(_valid(feed, b, data, check_codes=check_codes), key, keep), data,
                               columns) for b in feeds.BATCHES}
    dx.create_empty(path, sources[feeds.BATCHES[0]].drop_columns(["op"]).schema)
    newer = "s.updated_at > t.updated_at" if newer_check else "true"
    values = {c: f"s.{c}" for c in columns}

    def clauses(m):
        if apply_deletes:
            m = m.when_matched_delete(f"{newer} AND s.op = 'D'")
        if update:
            m = m.when_matched_update(values, newer)
        return m.when_not_matched_insert(values, "s.op <> 'D'" if apply_deletes else None)

    for batch in feeds.BATCHES:
        dx.merge(path, sources[batch], f"t.{key} = s.{key}", clauses, timestamp_ms=fix.ms(batch))


def _states(data: Path, rows) -> dict[str, pa.Table]:
    """``rows(folder)`` on the data delivered up to each batch (batch id → table)."""
    return {b: rows(fix.data_upto(data, b)) for b in feeds.BATCHES}


def _sql(table: pa.Table, select: str) -> pa.Table:
    return ref.connect(t=table).sql(select).to_arrow_table()


# -- the wrong answers -------------------------------------------------------------------------------

def plain_append(warehouse: Path, data: Path) -> None:
    """Every valid row of every batch appended: no dedup, no MERGE, op ignored."""
    name = "silver.encounters_clean"
    columns, path = _columns(warehouse, name), dx.table_dir(warehouse, name)
    shutil.rmtree(path)
    for batch in feeds.BATCHES:
        dx.write(path, _silver_rows("encounters", _valid("encounters", batch, data), data, columns)
                 .drop_columns(["op"]))


def overwrite_each_delivery(warehouse: Path, data: Path) -> None:
    """The whole table recomputed from bronze and overwritten on every delivery."""
    path = dx.table_dir(warehouse, "silver.medications_clean")
    shutil.rmtree(path)
    for state in _states(data, lambda d: ref.expected_clean("medications", d)).values():
        dx.write(path, fix.utc(state), "overwrite")


def reloaded_between_merges(warehouse: Path, data: Path) -> None:
    """The initial-load cell (CREATE OR REPLACE TABLE … AS SELECT) re-run between two MERGEs."""
    path = dx.table_dir(warehouse, "silver.diagnoses_clean")
    shutil.rmtree(path)
    states = _states(data, lambda d: ref.expected_clean("diagnoses", d))
    first, second, third = feeds.BATCHES
    dx.write(path, fix.utc(states[first]), operation="CREATE TABLE AS SELECT")
    fix.merge_state(path, states[first], states[second], ["diagnosis_id"], second)
    dx.write(path, fix.utc(states[second]), "overwrite", operation="CREATE OR REPLACE TABLE AS SELECT")
    fix.merge_state(path, states[second], states[third], ["diagnosis_id"], third)


def reloaded_before_last_merge(warehouse: Path, data: Path) -> None:
    """The solution's shape (CREATE TABLE, then a MERGE per batch), with the initial-load cell
    re-run as CREATE OR REPLACE TABLE … AS SELECT just before the last delivery's MERGE."""
    path = dx.table_dir(warehouse, "silver.diagnoses_clean")
    shutil.rmtree(path)
    states = _states(data, lambda d: ref.expected_clean("diagnoses", d))
    first, second, third = feeds.BATCHES
    empty = states[first].schema.empty_table()
    dx.create_empty(path, fix.utc(empty).schema)
    fix.merge_state(path, empty, states[first], ["diagnosis_id"], first)
    fix.merge_state(path, states[first], states[second], ["diagnosis_id"], second)
    dx.write(path, fix.utc(states[second]), "overwrite", operation="CREATE OR REPLACE TABLE AS SELECT")
    fix.merge_state(path, states[second], states[third], ["diagnosis_id"], third)


@lru_cache(maxsize=8)
def _most(effect: str, data: Path) -> str:
    """The clean feed whose CDC deliveries carry most ``effect`` ("updates" or "deletes") of
    existing keys."""
    counts = {feed: ref.cdc_effects(feed, data)[effect] for feed in ref.CLEAN_FEEDS}
    feed = max(counts, key=counts.get)
    assert counts[feed] > 0, f"the fast data's CDC deliveries hold no {effect}"
    return feed


def insert_only_merge(warehouse: Path, data: Path) -> None:
    """MERGE with only WHEN NOT MATCHED THEN INSERT: newer versions and deletes never applied."""
    learner_merge(warehouse, data, _most("updates", data), apply_deletes=False, update=False)


def deletes_ignored(warehouse: Path, data: Path) -> None:
    """No delete clause: a delete record updates the row like any other change."""
    learner_merge(warehouse, data, _most("deletes", data), apply_deletes=False)


@lru_cache(maxsize=4)
def _stale_feed(data: Path) -> str:
    """The clean feed with most records that arrive after a newer version of their key."""
    counts = {}
    for feed in ref.CLEAN_FEEDS:
        key = feeds.FEEDS[feed].key
        counts[feed] = ref.connect(r=ref.records(feed, data)).execute(
            f"WITH b AS (SELECT {key}, _batch, max(updated_at) AS t FROM r WHERE _reason IS NULL GROUP BY 1, 2) "
            f"SELECT count(*) FROM b x JOIN b y USING ({key}) WHERE y._batch > x._batch AND y.t < x.t").fetchone()[0]
    feed = max(counts, key=counts.get)
    assert counts[feed] > 0, "the fast data holds no out-of-order record in a later batch"
    return feed


def late_record_wins(warehouse: Path, data: Path) -> None:
    """MERGE without the "source is newer" guard: a late, older record overwrites a newer one."""
    learner_merge(warehouse, data, _stale_feed(data), newer_check=False)


def oldest_version_kept(warehouse: Path, data: Path) -> None:
    """Dedup ordered by updated_at ascending: the oldest version of each key in a batch wins."""
    learner_merge(warehouse, data, "diagnoses", keep="oldest")


def codes_not_validated(warehouse: Path, data: Path) -> None:
    """Required fields checked, codes not: invalid ICD-10 codes reach silver."""
    learner_merge(warehouse, data, "diagnoses", check_codes=False)


def malformed_not_quarantined(warehouse: Path, data: Path) -> None:
    """Quarantine built from the rejected records only; the malformed lines are dropped."""
    path = dx.table_dir(warehouse, "silver.quarantine")
    shutil.rmtree(path)
    for batch in feeds.BATCHES:
        dx.write(path, _sql(fix.quarantine_rows(data, batch), "SELECT * FROM t WHERE reason <> 'malformed'"))


def quarantine_missing(warehouse: Path, data: Path) -> None:
    """The quarantine cell never ran."""
    shutil.rmtree(dx.table_dir(warehouse, "silver.quarantine"))


def is_chronic_as_text(warehouse: Path, data: Path) -> None:
    """is_chronic kept as the feed's 'Y'/'N' string instead of a boolean."""
    path = dx.table_dir(warehouse, "silver.diagnoses_clean")
    shutil.rmtree(path)
    fix.merge_states(path, _states(data, lambda d: _sql(
        ref.expected_clean("diagnoses", d),
        "SELECT * REPLACE (CASE WHEN is_chronic THEN 'Y' ELSE 'N' END AS is_chronic) FROM t")), ["diagnosis_id"])


def dropna_everywhere(warehouse: Path, data: Path) -> None:
    """df.dropna() before the MERGE: every row with any null column is lost (an unresolved
    diagnosis has no resolved_date)."""
    path = dx.table_dir(warehouse, "silver.diagnoses_clean")
    columns = _columns(warehouse, "silver.diagnoses_clean")
    dx.delete(path, " OR ".join(f"{c} IS NULL" for c in columns))


def length_of_stay_in_24h(warehouse: Path, data: Path) -> None:
    """Stay length as whole 24-hour periods instead of calendar days between the dates."""
    dx.update(dx.table_dir(warehouse, "silver.encounters_clean"), {"length_of_stay_days": (
        "CAST(floor((CAST(discharge_ts AS BIGINT) - CAST(admit_ts AS BIGINT)) / 86400000000.0) AS INT)")},
        "discharge_ts IS NOT NULL")


def flag_without_otherwise(warehouse: Path, data: Path) -> None:
    """when(> high, 'H').when(< low, 'L') without .otherwise('N'): normal results are null."""
    dx.update(dx.table_dir(warehouse, "silver.lab_results_clean"), {"abnormal_flag": "CAST(NULL AS STRING)"},
              "abnormal_flag = 'N'")


def end_date_ignored(warehouse: Path, data: Path) -> None:
    """is_active from the start date only."""
    dx.update(dx.table_dir(warehouse, "silver.medications_clean"),
              {"is_active": f"start_date <= DATE '{ref.as_of_date(data).isoformat()}'"})


SCD_KEY = ["patient_id", "effective_from"]


def never_closed(warehouse: Path, data: Path) -> None:
    """The SCD2 MERGE without its WHEN MATCHED clause: new versions inserted, old ones stay current."""
    path = dx.table_dir(warehouse, "silver.patients_scd")
    shutil.rmtree(path)
    fix.merge_states(path, _states(data, lambda d: _sql(
        fix.scd_versions(d), "SELECT * REPLACE (NULL::TIMESTAMP AS effective_to, true AS is_current) FROM t")),
        SCD_KEY)


def closed_at_load_time(warehouse: Path, data: Path) -> None:
    """Old versions closed with current_timestamp() instead of the next version's start."""
    load = fix.BATCH_TIME[feeds.BATCHES[-1]].strftime("%Y-%m-%dT%H:%M:%SZ")
    dx.update(dx.table_dir(warehouse, "silver.patients_scd"), {"effective_to": f"TIMESTAMP '{load}'"},
              "NOT is_current")


def type1_in_place(warehouse: Path, data: Path) -> None:
    """SCD Type 1: the patient's row overwritten in place on every change (history lost)."""
    path = dx.table_dir(warehouse, "silver.patients_scd")
    shutil.rmtree(path)
    fix.merge_states(path, _states(data, lambda d: _sql(fix.scd_versions(d),
                                                                   "SELECT * FROM t WHERE is_current")),
                     ["patient_id"])


def _every_record_a_version(data: Path) -> pa.Table:
    """SCD2 without dedup or change detection: every distinct delivered record (by patient and
    updated_at, deletes ignored) opens a version."""
    columns = ", ".join(c for c in feeds.FEEDS["patients"].columns if c != "op")
    return ref.connect(r=ref.records("patients", data)).sql(f"""
        WITH s AS (SELECT * FROM r WHERE _reason IS NULL AND op <> 'D'
                   QUALIFY row_number() OVER (PARTITION BY patient_id, updated_at ORDER BY _batch, _line) = 1)
        SELECT {columns}, updated_at AS effective_from,
               lead(updated_at) OVER w AS effective_to, lead(updated_at) OVER w IS NULL AS is_current
        FROM s WINDOW w AS (PARTITION BY patient_id ORDER BY updated_at)""").to_arrow_table()


def no_change_detection(warehouse: Path, data: Path) -> None:
    """A new version for every delivered record, even when no tracked attribute changed (a
    re-delivery, a change of phone only)."""
    path = dx.table_dir(warehouse, "silver.patients_scd")
    shutil.rmtree(path)
    fix.merge_states(path, _states(data, _every_record_a_version), SCD_KEY)


def quarantine_rerun_on_key(warehouse: Path, data: Path) -> None:
    """The quarantine MERGE matches on feed, batch and key, and the last batch is run again (a
    re-run of the notebook): rejects without a key (malformed lines, null keys) never match, so
    they are inserted a second time."""
    last = feeds.BATCHES[-1]
    dx.merge(dx.table_dir(warehouse, "silver.quarantine"), fix.quarantine_rows(data, last),
             "t.feed = s.feed AND t.batch = s.batch AND t.key = s.key",
             lambda m: m.when_not_matched_insert_all(), timestamp_ms=fix.ms(last) + 1)


def _versions_with_plain_inequality(data: Path) -> pa.Table:
    """The reference's SCD2 versions (ref.patient_versions) built with ``s.c <> t.c`` instead of the
    null-safe comparison: a tracked attribute that is null on one side never counts as changed."""
    newest = ref.connect(r=ref.records("patients", data)).sql(
        "SELECT * FROM r WHERE _reason IS NULL QUALIFY row_number() OVER (PARTITION BY _batch, patient_id "
        "ORDER BY updated_at DESC, _line) = 1 ORDER BY _batch, patient_id").to_arrow_table()
    out: dict[str, list[dict]] = {}
    for s in newest.to_pylist():  # batch by batch: each patient's newest valid record of the batch
        pid, batch = s["patient_id"], s["_batch"]
        versions = out.setdefault(pid, [])
        last = versions[-1] if versions else None
        changed = last is not None and any(
            s[c] is not None and last[c] is not None and s[c] != last[c] for c in ref.TRACKED)
        if last is not None and last["is_current"] and s["updated_at"] > last["effective_from"] \
                and (s["op"] == "D" or changed):
            last.update(effective_to=s["updated_at"], is_current=False, closed_by=batch)
        elif not (last is None or (not last["is_current"] and s["updated_at"] > last["effective_to"])):
            continue
        if s["op"] != "D":
            versions.append({"patient_id": pid, **{c: s[c] for c in ref.TRACKED}, "effective_from": s["updated_at"],
                             "effective_to": None, "is_current": True, "batch": batch, "closed_by": None})
    flat = [v for pid in sorted(out) for v in out[pid]]
    return pa.Table.from_pylist(flat, schema=ref.patient_versions(data).schema)


def scd2_plain_inequality(warehouse: Path, data: Path) -> None:
    """SCD2 change detection with s.c <> t.c: a member id removed (value → null) or restored
    (null → value) opens no version."""
    path = dx.table_dir(warehouse, "silver.patients_scd")
    shutil.rmtree(path)
    fix.merge_states(path, _states(data, lambda d: fix.scd_versions(d, _versions_with_plain_inequality(d))),
                     SCD_KEY)


WRONG_ANSWERS = [
    Wrong("plain_append", plain_append,
          {"merge_history": ("silver.encounters_clean has 0 MERGE commit(s)", "WRITE (mode=Append)"),
           "unique_keys": ("silver.encounters_clean has", "keys on more than one row")}),
    Wrong("overwrite_each_delivery", overwrite_each_delivery,
          {"merge_history": ("silver.medications_clean has 0 MERGE commit(s)", "mode=Overwrite")},
          passes=("unique_keys", "latest_wins", "active_medications")),
    Wrong("reloaded_before_last_merge", reloaded_before_last_merge,
          {"merge_history": ("silver.diagnoses_clean was rewritten after its initial load",
                             "CREATE OR REPLACE TABLE AS SELECT")},
          passes=("unique_keys", "latest_wins")),
    Wrong("reloaded_between_merges", reloaded_between_merges,
          {"merge_history": ("silver.diagnoses_clean was rewritten after its initial load",
                             "CREATE OR REPLACE TABLE AS SELECT")},
          passes=("unique_keys", "latest_wins")),
    Wrong("insert_only_merge", insert_only_merge,
          {"merge_metrics": (lambda d: f"silver.{_most('updates', d)}_clean: MERGE metrics show 0 rows updated",),
           "latest_wins": (lambda d: f"silver.{_most('updates', d)}_clean holds another version than the newest",)},
          passes=("merge_history", "unique_keys")),
    Wrong("deletes_ignored", deletes_ignored,
          {"deletes_applied": (lambda d: f"silver.{_most('deletes', d)}_clean still holds", "keys the source deleted"),
           "merge_metrics": (lambda d: f"silver.{_most('deletes', d)}_clean: MERGE metrics show 0 rows deleted",)},
          passes=("merge_history", "unique_keys")),
    Wrong("late_record_wins", late_record_wins,
          {"latest_wins": (lambda d: f"silver.{_stale_feed(d)}_clean holds another version than the newest",
                           "updated_at 20", ", newest 20")},
          passes=("unique_keys", "merge_history")),
    Wrong("oldest_version_kept", oldest_version_kept,
          {"latest_wins": ("silver.diagnoses_clean holds another version than the newest",)},
          passes=("unique_keys", "merge_history")),
    Wrong("codes_not_validated", codes_not_validated,
          {"quarantine": ("silver.diagnoses_clean holds", "belong in quarantine", "invalid ICD-10-CM code")},
          passes=("unique_keys", "merge_history")),
    Wrong("malformed_not_quarantined", malformed_not_quarantined,
          {"quarantine": ("malformed", "line(s) are not in silver.quarantine")},
          passes=("silver_columns",)),
    Wrong("quarantine_rerun_on_key", quarantine_rerun_on_key,
          {"quarantine": ("silver.quarantine holds", "duplicate row(s)", "record without a key of batch 003",
                          "a MERGE on key never matches a null key")},
          passes=("silver_columns", "nothing_lost")),
    Wrong("quarantine_missing", quarantine_missing, {"tables_exist": ("silver.quarantine", "run lab 02")}),
    Wrong("is_chronic_as_text", is_chronic_as_text,
          {"silver_columns": ("silver.diagnoses_clean.is_chronic is string, expected boolean",)},
          passes=("merge_history", "unique_keys")),
    Wrong("dropna_everywhere", dropna_everywhere,
          {"nothing_lost": ("silver.diagnoses_clean lacks", "delivered valid and not deleted, e.g. DX")},
          passes=("unique_keys", "merge_history", "latest_wins")),
    Wrong("length_of_stay_in_24h", length_of_stay_in_24h,
          {"length_of_stay": ("encounter rows have another length_of_stay_days", "e.g. ENC")},
          passes=("latest_wins", "merge_history")),
    Wrong("flag_without_otherwise", flag_without_otherwise,
          {"abnormal_flag": ("lab result rows have another abnormal_flag", ": null, expected N")},
          passes=("latest_wins",)),
    Wrong("end_date_ignored", end_date_ignored,
          {"active_medications": ("medications ended on or before", "are marked active, e.g. MED", "(end_date 20")},
          passes=("latest_wins",)),
    Wrong("never_closed", never_closed,
          {"scd2_one_current": ("current rows (effective",),
           "scd2_intervals": ("overlapping intervals",),
           "merge_metrics": ("silver.patients_scd: MERGE metrics show 0 rows updated",)}),
    Wrong("closed_at_load_time", closed_at_load_time,
          {"scd2_intervals": ("after the next version starts", "overlapping intervals")},
          passes=("scd2_one_current",)),
    Wrong("type1_in_place", type1_in_place,
          {"scd2_versions": ("has 1 version (effective", "expected")},
          passes=("scd2_one_current", "merge_history")),
    Wrong("scd2_plain_inequality", scd2_plain_inequality,
          {"scd2_versions": ("the missing version effective", "changes only from or to NULL (insurance_member_id",
                             "compare with NOT (s.c <=> t.c)")},
          passes=("scd2_one_current", "scd2_intervals", "scd2_changes_only", "merge_history")),
    Wrong("no_change_detection", no_change_detection,
          {"scd2_changes_only": ("repeats the tracked attributes of the one before it",)},
          passes=("merge_history",)),
]


def test_solution_passes_every_check(silver_warehouse: Path, fast_data: Path) -> None:
    assert_all_pass(grader.grade(LAB, silver_warehouse, fast_data), [c.id for c in get_lab(LAB).checks])


@pytest.mark.parametrize("wrong", WRONG_ANSWERS, ids=lambda w: w.name)
def test_wrong_answer_fails_the_right_check(wrong: Wrong, silver_warehouse: Path, fast_data: Path,
                                            tmp_path: Path) -> None:
    warehouse = copy_of(silver_warehouse, tmp_path)
    wrong.build(warehouse, fast_data)
    assert_wrong(grader.grade(LAB, warehouse, fast_data), wrong, fast_data)


@pytest.mark.parametrize("feed", ["lab_results", "patients"])
def test_the_reference_parse_is_the_same_in_any_chunk_size(feed: str, fast_data: Path, monkeypatch) -> None:
    """Large feeds are staged in arrow batches of ``CHUNK_RECORDS``: batch boundaries (here every
    7 records, across files, malformed lines and JSON arrays) change nothing in the result."""
    _, stamp = ref.file_stamp(feed, fast_data)
    staged = ref._staged_batch
    batches: list[int] = []
    monkeypatch.setattr(ref, "_staged_batch", lambda *args: batches.append(1) or staged(*args))
    monkeypatch.setattr(ref, "CHUNK_RECORDS", 10**9)
    whole = ref._parse.__wrapped__(feed, fast_data, stamp)
    assert len(batches) == 1
    monkeypatch.setattr(ref, "CHUNK_RECORDS", 7)
    chunked = ref._parse.__wrapped__(feed, fast_data, stamp)
    assert len(batches) - 1 > 3 and whole[1].num_rows > 0
    assert chunked[0].equals(whole[0]) and chunked[1].equals(whole[1])


def test_a_json_array_line_gives_its_records_in_array_order_across_chunks(fast_data: Path, tmp_path: Path,
                                                                         monkeypatch) -> None:
    """Spark reads a line holding a JSON array of objects as one row per object. The records share
    their line number and keep the array's order, also when a staging batch ends inside the array."""
    data = tmp_path / "data"
    shutil.copytree(fast_data, data)
    path = Path(feeds.FEEDS["lab_results"].path(str(data), "001"))
    with gzip.open(path, "rt") as fh:
        text = fh.read()
    first = json.loads(text.splitlines()[0])
    ids = [f"LR-ARRAY-{i}" for i in (3, 1, 2)]  # not sorted: the order must come from the array
    array = json.dumps([{**first, "lab_result_id": i} for i in ids])
    with gzip.open(path, "wt") as fh:
        fh.write(text + array + "\n")
    _, stamp = ref.file_stamp("lab_results", data)
    monkeypatch.setattr(ref, "CHUNK_RECORDS", 2)
    parsed, _ = ref._parse.__wrapped__("lab_results", data, stamp)
    rows = parsed.filter(pc.starts_with(parsed["lab_result_id"], "LR-ARRAY-")).to_pylist()
    assert [r["lab_result_id"] for r in rows] == ids and len({r["_line"] for r in rows}) == 1
    monkeypatch.setattr(ref, "CHUNK_RECORDS", 10**9)
    assert ref._parse.__wrapped__("lab_results", data, stamp)[0].equals(parsed)


def test_the_garbage_collector_runs_again_after_a_parse_that_fails() -> None:
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            with pytest.raises(ValueError), ref._cyclic_gc_paused():
                assert not gc.isenabled()
                raise ValueError("a damaged feed")
            assert gc.isenabled() is enabled
        finally:
            gc.enable()
