"""Lab 06 on a fixture warehouse without a JVM: what the declarative pipeline leaves, and mistakes.

:func:`solve` plays the solution's two updates on lab 06's landing volume prepared from the fast
data set — update 1 on batches 001–003, ``deliver(volume="lab06")`` (batch 004), update 2 — and
writes what the pipeline writes (shapes from a Spark 4.2 / Delta 4.4 run of
``solutions/06_declarative_pipelines``, docs/lab06-declarative-pipelines-spike.md):

* ``bronze.<feed>_dp``, streaming tables: CREATE TABLE, STREAMING UPDATE epochId 0 (every line of
  the landed files, :func:`fast.streaming.bronze_rows`); update 2: SET TBLPROPERTIES, STREAMING
  UPDATE epochId 1 of the same query with the new file's lines (a full refresh: TRUNCATE, SET
  TBLPROPERTIES, epochId 0 of a new query with every line); each micro-batch also in the flow's
  checkpoint (:func:`checkpoint`: generation 0, a full refresh's in generation 1);
* silver and gold, materialized views: CREATE TABLE, WRITE; update 2: TRUNCATE, SET
  TBLPROPERTIES, WRITE. Their rows are the solution's queries run by DuckDB on the bronze rows
  just written (:data:`SILVER_SQL`: newest row per key by ``updated_at``, deletes left out, rows
  without a key kept; then the declared drop rules) — not the grader's reference, which reads
  the raw files;
* the event log ``<warehouse>/volumes/pipelines/medilake_lab06/event_log`` per update:
  create_update, dataset_definition and flow_definition per dataset, flow_progress of each silver
  flow with the counts of its declared rules (:data:`DECLARED`, evaluated on the query's rows as
  the kit does: NULL fails), update_progress COMPLETED; and the spec ``spark-pipeline.yml``.

:class:`Knobs` turns the solution into realistic mistakes; each wrong answer rebuilds lab 06 on a
copy of the warehouse with one knob changed.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from fast import deltafix as dx
from fast import streaming as st
from medilake_lab.contract import codes, feeds
from medilake_lab.datagen.delivery import deliver, prepare_landing
from medilake_lab.grader.toolkit import connect
from medilake_lab.runtime import config

PIPELINE, VOLUME = "medilake_lab06", "lab06"
FEEDS = ("encounters", "lab_results")
KEY = {"encounters": "encounter_id", "lab_results": "lab_result_id"}
_LOINC = ", ".join(f"'{c}'" for c in sorted(codes.LOINC))
#: The solution's expectations per silver view: (name, constraint, action), as its decorators declare them.
DECLARED: dict[str, list[tuple[str, str, str]]] = {
    "silver.encounters_dp": [
        ("well_formed", "_corrupt_record IS NULL", "DROP"),
        ("required_fields", "encounter_id IS NOT NULL AND patient_id IS NOT NULL AND encounter_class IS NOT NULL "
                            "AND admit_ts IS NOT NULL AND op IS NOT NULL AND updated_at IS NOT NULL", "DROP")],
    "silver.lab_results_dp": [
        ("well_formed", "_corrupt_record IS NULL", "DROP"),
        ("required_fields", "lab_result_id IS NOT NULL AND patient_id IS NOT NULL AND loinc_code IS NOT NULL AND "
                            "value IS NOT NULL AND result_ts IS NOT NULL AND op IS NOT NULL AND updated_at IS NOT NULL",
         "DROP"),
        ("valid_loinc_code", f"loinc_code IN ({_LOINC})", "DROP"),
        ("plausible_reference_range", "ref_low <= ref_high", "WARN"),
        ("known_operation", "op IS NULL OR op IN ('I', 'U', 'D')", "FAIL")],
}
#: The solution's silver query (DuckDB spelling of its Spark SQL); ``{order}`` sequences the versions.
SILVER_SQL = """SELECT * EXCLUDE (_rn, _pos, _corrupt_record, _source_file, _ingested_at), _corrupt_record FROM (
    SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY {order}) AS _rn
    FROM (SELECT *, row_number() OVER () AS _pos FROM b))
  WHERE ({key} IS NULL OR _rn = 1) AND op IS DISTINCT FROM 'D'"""
BY_CHANGE_TIME = "updated_at DESC NULLS LAST, _batch_id"
#: The last delivered line wins (``_pos``: the line's place in bronze, i.e. file order).
BY_INGESTION = "_batch_id DESC, _pos DESC"
GOLD_SQL = {
    "gold.encounters_by_class_dp": "SELECT encounter_class, count(*) AS encounters, count(DISTINCT patient_id) AS "
                                   "patients FROM s GROUP BY ALL",
    "gold.abnormal_results_by_test_dp": "SELECT loinc_code, test_name, count(*) AS results, "
                                        "count_if(value < ref_low OR value > ref_high)::BIGINT AS abnormal_results "
                                        "FROM s GROUP BY ALL",
}
GOLD_INPUT = {"gold.encounters_by_class_dp": "silver.encounters_dp",
              "gold.abnormal_results_by_test_dp": "silver.lab_results_dp"}


@dataclass(frozen=True)
class Knobs:
    """How the learner's lab 06 differs from the solution (defaults: the solution).

    ``warn``: rules declared with ``expect`` instead of their action; ``missing``: rules not
    declared; ``order``: the silver encounters' sequencing (:data:`BY_CHANGE_TIME` or
    :data:`BY_INGESTION`); ``streaming_gold``: gold tables declared as streaming tables;
    ``full_refresh``: update 2 run with ``--full-refresh``; ``delivered``: batch 004 delivered
    before update 2; ``updates``: how many updates ran; ``stale_counts``: update 2's flow_progress
    repeats update 1's counts (written by hand, not recomputed)."""

    warn: frozenset[str] = frozenset()
    missing: frozenset[str] = frozenset()
    order: str = BY_CHANGE_TIME
    streaming_gold: frozenset[str] = frozenset()
    full_refresh: bool = False
    delivered: bool = True
    updates: int = 2
    stale_counts: bool = False


def home(warehouse: Path) -> Path:
    return config.volume_dir(warehouse) / "pipelines" / PIPELINE


def volume(warehouse: Path) -> Path:
    return config.volume_dir(warehouse, VOLUME)


def landed(warehouse: Path, feed: str) -> list[Path]:
    root = volume(warehouse)
    return [Path(feeds.FEEDS[feed].path(str(root), b)) for b in feeds.delivered_batches(root, feed)]


def checkpoint(warehouse: Path, feed: str, generation: int = 0) -> Path:
    """SDP's checkpoint of a bronze flow: ``<home>/storage/_checkpoints/spark_catalog/bronze/<t>/<t>/<n>``
    (a full refresh starts generation ``n + 1``)."""
    table = f"{feed}_dp"
    return home(warehouse) / "storage" / "_checkpoints" / "spark_catalog" / "bronze" / table / table / str(generation)


def write_spec(warehouse: Path, name: str = PIPELINE) -> Path:
    """The project's spec beside the warehouse (``<warehouse>-project/spark-pipeline.yml``)."""
    spec = warehouse.parent / f"{warehouse.name}-project" / "spark-pipeline.yml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(f"name: {name}\nstorage: file:///unused\n"
                    "libraries:\n  - glob:\n      include: transformations/**\n")
    return spec


# ------------------------------------------------------------------------------------ table writes

def truncate(path: Path) -> int:
    """``TRUNCATE TABLE``: every row removed (a materialized view's refresh, a full refresh)."""
    DeltaTable(str(path)).delete()
    version = DeltaTable(str(path)).version()
    dx.spark_commit(path, version, "TRUNCATE", {}, {"numRemovedFiles": dx.file_changes(path, version)["removed"]})
    return version


def set_comment(path: Path, comment: str) -> int:
    """SDP's ``SET TBLPROPERTIES`` commit on every later update of a dataset."""
    return dx.commit_only(path, "SET TBLPROPERTIES", {"properties": {"comment": comment}}, {})


def write_view(path: Path, rows: pa.Table) -> None:
    """One computation of a materialized view: CREATE TABLE + WRITE, later TRUNCATE + SET
    TBLPROPERTIES + WRITE."""
    if (path / "_delta_log").exists():
        truncate(path)
        set_comment(path, "")
    else:
        dx.create_empty(path, rows.schema)
    dx.write(path, rows, "append")


def stream_into(path: Path, rows: pa.Table, qid: str, epoch: int) -> None:
    """One micro-batch of a streaming table (CREATE TABLE first when new; SET TBLPROPERTIES on a
    later update)."""
    if not (path / "_delta_log").exists():
        dx.create_empty(path, rows.schema)
    elif epoch == 0 or rows.num_rows:
        set_comment(path, "")
    if rows.num_rows:
        st.streaming_update(path, rows, qid, epoch)


# ---------------------------------------------------------------------------------------- updates

@dataclass
class Update:
    """One pipeline update: its id, number (1, 2…) and the events it writes."""

    number: int
    full_refresh: bool
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    events: list[dict] = field(default_factory=list)

    def event(self, kind: str, details: dict, dataset: str | None = None) -> None:
        name = f"spark_catalog.{dataset}" if dataset else None
        when = datetime.now(UTC)  # real time, like the driver's: an erasure made between updates falls between them
        self.events.append({"id": str(uuid.uuid4()), "timestamp": when, "event_type": kind, "level": "INFO",
                            "message": f"{kind} {dataset or ''}".strip(),
                            "origin": {"pipeline_name": PIPELINE, "update_id": self.id, "flow_name": name,
                                       "dataset_name": name},
                            "details": json.dumps({kind: details})})


EVENT_SCHEMA = pa.schema([
    ("id", pa.string()), ("timestamp", pa.timestamp("us", tz="UTC")), ("event_type", pa.string()),
    ("level", pa.string()), ("message", pa.string()),
    ("origin", pa.struct([("pipeline_name", pa.string()), ("update_id", pa.string()), ("flow_name", pa.string()),
                          ("dataset_name", pa.string())])),
    ("details", pa.string())])


def run_update(warehouse: Path, number: int, knobs: Knobs, spec: Path, previous: dict | None = None) -> dict:
    """Play one update (module docstring); returns its silver counts (for :attr:`Knobs.stale_counts`)."""
    full = knobs.full_refresh and number > 1
    update = Update(number, full)
    update.event("create_update", {"cause": "USER_ACTION", "full_refresh": full, "spec_path": str(spec),
                                   "libraries": ["transformations/**"]})
    for feed in FEEDS:
        _bronze(warehouse, feed, number, full)
    counts: dict[str, dict] = {}
    silver: dict[str, pa.Table] = {}
    for feed in FEEDS:
        name = f"silver.{feed}_dp"
        silver[name], counts[name] = _silver(warehouse, feed, knobs)
        write_view(dx.table_dir(warehouse, name), silver[name])
    for name, sql in GOLD_SQL.items():
        rows = connect(s=silver[GOLD_INPUT[name]]).sql(sql).to_arrow_table()
        path = dx.table_dir(warehouse, name)
        if name in knobs.streaming_gold:
            stream_into(path, rows, st.query_id(name), number - 1)
        else:
            write_view(path, rows)
    for schema_table, kind in _kinds(knobs).items():
        update.event("dataset_definition", {"dataset_type": kind}, schema_table)
        update.event("flow_definition", {"output_dataset": f"spark_catalog.{schema_table}",
                                         "flow_type": "STREAMING" if kind == "STREAMING_TABLE" else "COMPLETE",
                                         "expectations": _declared(schema_table, knobs)}, schema_table)
    for name, quality in (previous if knobs.stale_counts and previous else counts).items():
        update.event("flow_progress", {"status": "COMPLETED", "data_quality": quality}, name)
    update.event("update_progress", {"state": "COMPLETED"})
    write_deltalake(str(home(warehouse) / "event_log"), pa.Table.from_pylist(update.events, EVENT_SCHEMA),
                    mode="append")
    return counts


def _kinds(knobs: Knobs) -> dict[str, str]:
    kinds = {f"bronze.{f}_dp": "STREAMING_TABLE" for f in FEEDS}
    kinds |= {f"silver.{f}_dp": "MATERIALIZED_VIEW" for f in FEEDS}
    return kinds | {g: "STREAMING_TABLE" if g in knobs.streaming_gold else "MATERIALIZED_VIEW" for g in GOLD_SQL}


def _declared(dataset: str, knobs: Knobs) -> list[dict]:
    return [{"name": name, "constraint": sql, "action": "WARN" if name in knobs.warn else action}
            for name, sql, action in DECLARED.get(dataset, []) if name not in knobs.missing]


def _bronze(warehouse: Path, feed: str, number: int, full: bool) -> None:
    """The streaming table's micro-batch of this update: the files it has not read (all after a
    full refresh)."""
    path = dx.table_dir(warehouse, f"bronze.{feed}_dp")
    done: set[str] = set()
    if (path / "_delta_log").exists() and not full:
        done = {uri.rsplit("/", 1)[-1] for uri in dx.read(path)["_source_file"].to_pylist()}  # names: copies move
    elif full:
        truncate(path)
    files = [f for f in landed(warehouse, feed) if f.name not in done]
    if files:
        rows = pa.concat_tables([st.bronze_rows(feed, f, drift=False) for f in files])
        query, epoch = st.query_id(f"bronze.{feed}_dp", 1 if full else 0), 0 if full else number - 1
        stream_into(path, rows, query, epoch)
        st.write_checkpoint(checkpoint(warehouse, feed, 1 if full else 0), query,
                            [st.MicroBatch({"logOffset": epoch}, files)], first=epoch)


def _silver(warehouse: Path, feed: str, knobs: Knobs) -> tuple[pa.Table, dict]:
    """The silver view's rows after its expectations, and its flow_progress data quality."""
    name = f"silver.{feed}_dp"
    bronze = dx.read(dx.table_dir(warehouse, f"bronze.{feed}_dp"))
    order = knobs.order if feed == "encounters" else BY_CHANGE_TIME
    con = connect(b=bronze)
    con.execute(f"CREATE TEMP TABLE q AS {SILVER_SQL.format(key=KEY[feed], order=order)}")
    rules = [(r["name"], f"coalesce(({r['constraint']}), false)", r["action"]) for r in _declared(name, knobs)]
    drops = " AND ".join(ok for _, ok, action in rules if action == "DROP") or "true"
    total, dropped, *failed = con.execute(
        f"SELECT count(*), count_if(NOT ({drops})), {', '.join(f'count_if(NOT {ok})' for _, ok, _ in rules)} "
        "FROM q").fetchall()[0]
    quality = {"dropped_records": dropped, "expectations": [
        {"name": r, "dataset": name, "passed_records": total - k, "failed_records": k}
        for (r, _, _), k in zip(rules, failed, strict=True)]}
    rows = con.sql(f"SELECT * EXCLUDE (_corrupt_record) FROM q WHERE {drops}").to_arrow_table()
    return rows, quality


def solve(warehouse: Path, data: Path, knobs: Knobs = Knobs()) -> None:
    """Lab 06 as the solution leaves it (or as ``knobs`` changes it): landing volume, two updates
    around the delivery of batch 004, spec and event log."""
    prepare_landing(data, warehouse, volume=VOLUME)
    spec = write_spec(warehouse)
    counts = run_update(warehouse, 1, knobs, spec)
    if knobs.delivered:
        deliver(warehouse, data, volume=VOLUME)
    for number in range(2, knobs.updates + 1):
        counts = run_update(warehouse, number, knobs, spec, counts)


def rebuild(warehouse: Path, data: Path, **changes: object) -> None:
    """Lab 06 built again on ``warehouse`` with some :class:`Knobs` changed (its tables, landing
    volume and pipeline folder removed first)."""
    for name in (*(f"{s}.{f}_dp" for s in ("bronze", "silver") for f in FEEDS), *GOLD_SQL):
        shutil.rmtree(dx.table_dir(warehouse, name), ignore_errors=True)
    shutil.rmtree(volume(warehouse), ignore_errors=True)
    shutil.rmtree(home(warehouse), ignore_errors=True)
    solve(warehouse, data, replace(Knobs(), **changes))  # type: ignore[arg-type]
