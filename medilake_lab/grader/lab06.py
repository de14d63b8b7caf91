"""Lab 06 — Declarative pipelines with expectations. Evidence, all read without a JVM:

* the six datasets' Delta history (:mod:`medilake_lab.grader.commits`): a streaming table is
  written by STREAMING UPDATE commits of one query (``queryId``, ``epochId``), a materialized
  view by a CREATE TABLE + WRITE, then TRUNCATE + WRITE on every update (open-source SDP
  recomputes it in full);
* the pipeline's event log and spec (:mod:`medilake_lab.grader.event_log`):
  ``<warehouse>/volumes/pipelines/medilake_lab06/event_log``;
* values recomputed with DuckDB from the raw files of lab 06's landing volume
  ``<warehouse>/volumes/lab06`` (:mod:`medilake_lab.grader.reference.pipeline`: the candidate
  rows of the silver views and the lab's rules; :mod:`medilake_lab.grader.reference.silver`:
  lab 02's clean rows). The bundled data folder is not read.

Datasets and their columns (the solution, ``solutions/06_declarative_pipelines/``):

==========================================  =====================  =====================================
dataset                                     kind                   graded columns
==========================================  =====================  =====================================
``bronze.encounters_dp``                    streaming table        every landed line (rows per update)
``bronze.lab_results_dp``                   streaming table        every landed line (rows per update)
``silver.encounters_dp``                    materialized view      lab 02's clean encounters without
                                                                   ``length_of_stay_days``
``silver.lab_results_dp``                   materialized view      the drop rules' columns
``gold.encounters_by_class_dp``             materialized view      ``encounter_class``, ``encounters``,
                                                                   ``patients``
``gold.abnormal_results_by_test_dp``        materialized view      ``loinc_code``, ``test_name``,
                                                                   ``results``, ``abnormal_results``
==========================================  =====================  =====================================

Lab 07's erasure: the recomputations leave out the lines of the patients erased
(``Context.erasure_requests``) before the data judged was written — silver now, the event log's
counts at their update, a gold view at its last computation; the Delta history's streaming row
counts were written before any erasure, so :func:`incremental_update` compares them with every
landed line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from medilake_lab.contract import feeds
from medilake_lab.contract.labs import get_lab
from medilake_lab.errors import DataError
from medilake_lab.grader import Context, Outcome, check
from medilake_lab.grader.checkpoint import read_checkpoint
from medilake_lab.grader.commits import Commit, Kind
from medilake_lab.grader.delta import Table
from medilake_lab.grader.event_log import EventLogError, FlowProgress, Update, home, read_event_log, read_spec
from medilake_lab.grader.reference import pipeline as rp
from medilake_lab.grader.reference import silver as ref
from medilake_lab.grader.toolkit import Diff, compare, describe, fmt, key_text, n, plural
from medilake_lab.runtime import config

TABLES = get_lab("06").tables
PIPELINE = "medilake_lab06"
VOLUME = "lab06"
BRONZE = {feed: f"bronze.{feed}_dp" for feed in rp.FEEDS}
SILVER = {feed: f"silver.{feed}_dp" for feed in rp.FEEDS}
GOLD = {"gold.encounters_by_class_dp": (["encounter_class"], ["encounters", "patients"]),
        "gold.abnormal_results_by_test_dp": (["loinc_code", "test_name"], ["results", "abnormal_results"])}
STREAMING_TABLES = tuple(BRONZE.values())
MATERIALIZED_VIEWS = (*SILVER.values(), *GOLD)
#: The decorator of each action, as a learner writes it.
DECORATOR = {"warn": "expect", "drop": "expect_or_drop", "fail": "expect_or_fail"}
#: What a rule declared with another action than the lab's does: (lab's action, declared) → words.
CONSEQUENCE = {
    ("drop", "warn"): "rows that fail it reach silver",
    ("drop", "fail"): "the first row that fails it stops the whole update",
    ("warn", "drop"): "rows that fail it are removed although the lab keeps and counts them",
    ("warn", "fail"): "the first row that fails it stops the whole update",
    ("fail", "warn"): "a violation would not stop the update",
    ("fail", "drop"): "a violation would be dropped silently instead of stopping the update",
}


def _volume(ctx: Context) -> Path:
    """Lab 06's landing volume, the data folder of every recomputation here."""
    return config.volume_dir(ctx.warehouse, VOLUME)


def _delivered(ctx: Context, feed: str) -> dict[str, int]:
    """Batch → lines of the feed's files in lab 06's landing volume (every landed line: the Delta
    history's row counts predate any erasure); DataError says how to prepare the volume."""
    try:
        return ctx.memo(("06.lines", feed), lambda: rp.batch_lines(feed, _volume(ctx)))
    except DataError as exc:
        raise DataError(f"no {feed} files in lab 06's landing volume {_volume(ctx) / feeds.LANDING_DIR}: run lab 06 "
                        "(prepare_landing(volume=\"lab06\") copies the bundled batches there)") from exc


def _updates(ctx: Context) -> list[Update]:
    """The pipeline's updates, oldest first (read once per run; EventLogError when absent)."""
    return ctx.memo(("06.updates",), lambda: read_event_log(PIPELINE, ctx.warehouse))


def _last(ctx: Context) -> Update:
    """The last completed update; EventLogError when the log holds none."""
    done = [u for u in _updates(ctx) if u.completed]
    if not done:
        raise EventLogError(f"the event log of {PIPELINE} holds no completed update (update_progress COMPLETED): "
                            "run the pipeline with `medilake_lab pipeline run` until it completes")
    return done[-1]


def _short(update_or_query: str | None) -> str:
    return (update_or_query or "?")[:8]


def _erased_before(ctx: Context, moment: datetime | None) -> frozenset[str]:
    """Patients of the erasure requests made before ``moment`` (naive UTC; a request without a
    time counts as before): what data written at ``moment`` no longer held. An update or a
    materialized view computed before an erasure still counts the patient's lines (lab 07 DELETEs
    the patient's rows, and a later update recomputes without them)."""
    return frozenset(r.patient_id for r in ctx.erasure_requests().values()
                     if moment is None or r.requested_at is None or r.requested_at < moment)


def _written(table: Table) -> datetime | None:
    """When the table's last WRITE commit was made (naive UTC), None without one."""
    stamps = [c.timestamp_ms for c in table.history() if c.operation == "WRITE" and c.timestamp_ms is not None]
    return datetime.fromtimestamp(stamps[-1] / 1000, UTC).replace(tzinfo=None) if stamps else None


def _counts(ctx: Context, feed: str, update: Update) -> rp.Counts:
    """The counts an update must have recorded (erasures made before it left out)."""
    _delivered(ctx, feed)
    erased = _erased_before(ctx, update.started)
    return ctx.memo(("06.counts", feed, erased), lambda: rp.counts(feed, _volume(ctx), erased))


# -------------------------------------------------------------------------------------- checks

@check("06.tables_exist")
def tables_exist(ctx: Context) -> Outcome:
    """The six datasets are Delta tables at ``<warehouse>/<schema>/<table>``."""
    return ctx.tables_exist(TABLES, f"all {len(TABLES)} datasets of the pipeline are Delta tables")


@check("06.pipeline_runs")
def pipeline_runs(ctx: Context) -> Outcome:
    """The event log holds at least two completed updates; the last one's create_update names a
    spec that parses (:class:`medilake_lab.grader.event_log.PipelineSpec`) and is named
    ``medilake_lab06``; its dataset_definition events name the six datasets (temporary views and
    extra datasets such as a quarantine table are allowed)."""
    updates = _updates(ctx)
    done = [u for u in updates if u.completed]
    if len(done) < 2:
        states = ", ".join(f"{_short(u.id)} {u.state or 'no update_progress'}" for u in updates[-3:])
        return Outcome(False, f"the event log of {PIPELINE} holds {plural(len(done), 'completed update')} "
                              f"({plural(len(updates), 'update')} in all{': ' + states if states else ''}): run the "
                              "pipeline before the delivery of batch 004 and again after it")
    last = done[-1]
    if last.create is None or not last.create.spec_path:
        return Outcome(False, f"update {_short(last.id)} has no create_update event naming its spec_path: run the "
                              "pipeline with `medilake_lab pipeline run`, which records it")
    spec = read_spec(last.create.spec_path)
    if spec.name != PIPELINE:
        return Outcome(False, f"the spec {last.create.spec_path} names the pipeline {spec.name!r}, the lab's is "
                              f"{PIPELINE!r} (its event log and checkpoints live under that name)")
    missing = [t for t in TABLES if t not in last.datasets]
    if missing:
        shown = ", ".join(sorted(last.datasets)) or "none"
        return Outcome(False, f"update {_short(last.id)} defined {plural(len(last.datasets), 'dataset')} ({shown}); "
                              f"missing: {', '.join(missing)} — declare them in the spec's libraries")
    extra = sorted(set(last.datasets) - set(TABLES))
    more = f" (and {', '.join(extra)})" if extra else ""
    return Outcome(True, f"{plural(len(done), 'completed update')}; the last ({_short(last.id)}, "
                         f"{fmt(last.started)}, full_refresh {fmt(last.create.full_refresh)}) ran spec "
                         f"{last.create.spec_path} named {PIPELINE} with the {len(TABLES)} datasets{more}")


def _batch_writes(history: list[Commit]) -> list[Commit]:
    """Commits that add or change rows without a stream: WRITE, CTAS/RTAS, MERGE, UPDATE (a DELETE,
    e.g. lab 07's erasure, and TRUNCATE are judged elsewhere)."""
    return [c for c in history if c.changes_data and not c.is_streaming
            and c.kind not in (Kind.TRUNCATE, Kind.DELETE, Kind.RESTORE)]


def _versions(commits: list[Commit], limit: int = 3) -> str:
    shown = ", ".join(f"v{c.version} {c.operation}" + (f" epochId {c.param('epochId')}" if c.is_streaming else "")
                      for c in commits[:limit])
    return shown + (f" (+{len(commits) - limit} more)" if len(commits) > limit else "")


@check("06.dataset_kinds")
def dataset_kinds(ctx: Context) -> Outcome:
    """From the Delta history alone: bronze datasets are streaming tables (STREAMING UPDATE
    commits, no batch write); silver and gold are materialized views (a WRITE per update, every
    one after the first preceded by a TRUNCATE, no STREAMING UPDATE). A TRUNCATE of a streaming
    table is a full refresh, judged by ``incremental_update``."""
    problems, streamed, refreshes = [], 0, 0
    for name in STREAMING_TABLES:
        history = ctx.require(name).history()
        batch, stream = _batch_writes(history), [c for c in history if c.is_streaming]
        streamed += len(stream)
        if batch:
            problems.append(f"{name} has batch writes ({_versions(batch)}): a materialized view or a batch job; "
                            "a streaming table is written by STREAMING UPDATE commits only")
        elif not stream:
            problems.append(f"{name} has no STREAMING UPDATE commit: declare it with @dp.table over spark.readStream")
    for name in MATERIALIZED_VIEWS:
        history = ctx.require(name).history()
        stream, writes = [c for c in history if c.is_streaming], _batch_writes(history)
        if stream:
            query = stream[0].query_id
            problems.append(f"{name} is written by {plural(len(stream), 'STREAMING UPDATE commit')} "
                            f"({_versions(stream)}, query {_short(query)}): a streaming table, which appends each "
                            "update's new input; declare it with @dp.materialized_view so it is recomputed")
            continue
        if not writes:
            problems.append(f"{name} has no WRITE commit: the pipeline never computed it")
            continue
        truncates = sum(c.kind is Kind.TRUNCATE for c in history)
        if truncates < len(writes) - 1:
            problems.append(f"{name} has {plural(len(writes), 'write')} but {plural(truncates, 'TRUNCATE')}: a "
                            "materialized view is emptied (TRUNCATE) and recomputed (WRITE) by every update")
        refreshes += len(writes)
    return Outcome.from_problems(problems, f"bronze: {len(STREAMING_TABLES)} streaming tables "
                                 f"({plural(streamed, 'STREAMING UPDATE commit')}); silver and gold: "
                                 f"{len(MATERIALIZED_VIEWS)} materialized views ({n(refreshes)} computations, each "
                                 "later one a TRUNCATE + WRITE)")


@check("06.expectations_declared")
def expectations_declared(ctx: Context) -> Outcome:
    """The flow_definition events of the last completed update declare, for each silver view,
    every rule of :data:`medilake_lab.grader.reference.pipeline.RULES` by name with its action
    (extra expectations are allowed)."""
    last = _last(ctx)
    problems, declared = [], []
    for feed, dataset in SILVER.items():
        found = last.flow_into(dataset)
        if found is None:
            problems.append(f"update {_short(last.id)} has no flow_definition writing {dataset}")
            continue
        have = {e.name: e.action.lower() for e in found[1].expectations}
        for rule in rp.RULES[feed]:
            action = have.get(rule.name)
            if action is None:
                problems.append(f"{dataset} declares no expectation {rule.name} ({rule.words}): add "
                                f"@{DECORATOR[rule.action]}(\"{rule.name}\", \"{rule.constraint}\")")
            elif action != rule.action:
                problems.append(f"{dataset}: {rule.name} is {DECORATOR.get(action, action)} ({action.upper()}): "
                                f"{CONSEQUENCE[(rule.action, action)]}; use {DECORATOR[rule.action]}")
        declared.append(f"{dataset} {', '.join(f'{r.name} ({r.action})' for r in rp.RULES[feed])}")
    return Outcome.from_problems(problems, f"update {_short(last.id)} declares " + "; ".join(declared))


def _progress(last: Update, dataset: str) -> FlowProgress:
    """The flow_progress (with data quality) of the flow writing ``dataset``; EventLogError when absent."""
    progress = last.progress_of(dataset)
    if progress is None or progress.data_quality is None:
        raise EventLogError(f"update {_short(last.id)} has no flow_progress event with data_quality for {dataset}: "
                            "run the pipeline with `medilake_lab pipeline run`, which records the counts")
    return progress


@check("06.expectation_counts")
def expectation_counts(ctx: Context) -> Outcome:
    """The last completed update's flow_progress counts of each silver view — failed records per
    expectation, passed + failed (the candidate rows) and dropped records — equal the
    recomputation from the landing files (:func:`medilake_lab.grader.reference.pipeline.counts`)."""
    last = _last(ctx)
    problems, shown = [], []
    for feed, dataset in SILVER.items():
        quality = _progress(last, dataset).data_quality
        assert quality is not None
        want = _counts(ctx, feed, last)
        got = {e.name: e for e in quality.expectations}
        for rule in rp.RULES[feed]:
            count = got.get(rule.name)
            if count is None:
                problems.append(f"{dataset}: the event log has no counts for {rule.name}")
                continue
            if count.failed_records != want.failed[rule.name]:
                problems.append(f"{dataset} {rule.name}: the event log says {n(count.failed_records)} failed, the "
                                f"landing files give {n(want.failed[rule.name])}")
            if count.passed_records + count.failed_records != want.rows:
                problems.append(f"{dataset} {rule.name}: counted over {n(count.passed_records + count.failed_records)} "
                                f"rows, the candidate rows are {n(want.rows)} (newest version per key, deletes "
                                "left out, plus every line without a key)")
        if quality.dropped_records != want.dropped:
            problems.append(f"{dataset}: the event log says {n(quality.dropped_records)} dropped records, the landing "
                            f"files give {n(want.dropped)} rows failing a drop rule")
        failed = ", ".join(f"{name} {n(k)}" for name, k in want.failed.items())
        shown.append(f"{dataset} {n(want.rows)} candidate rows, failed {failed}, dropped {n(want.dropped)}")
    outcome = Outcome.from_problems(problems, f"update {_short(last.id)}: " + "; ".join(shown) + " — as the "
                                    "landing files give")
    if problems:
        return Outcome(False, f"update {_short(last.id)}: {outcome.finding} — counts recorded by hand or by an older "
                              "run do not match the data: run the pipeline again with `medilake_lab pipeline run`")
    return outcome


@check("06.dropped_rows")
def dropped_rows(ctx: Context) -> Outcome:
    """No row of a silver view fails a drop rule (rules over columns the view does not keep, such
    as ``_corrupt_record``, are not evaluated), and the rows the last update wrote (its WRITE
    commit's numOutputRows: a later erasure DELETE does not count) + the event log's dropped
    records = the candidate rows the event log counted (passed + failed of an expectation)."""
    last = _last(ctx)
    problems, shown = [], []
    for feed, dataset in SILVER.items():
        table = ctx.require(dataset)
        key = feeds.FEEDS[feed].key
        wanted = [key, *feeds.FEEDS[feed].required, "loinc_code", "_corrupt_record"]
        rows = ctx.rows(dataset, list(dict.fromkeys(c for c in wanted if c in table.columns)))
        for rule in rp.RULES[feed]:
            if rule.action != "drop":
                continue
            bad = rp.failing(feed, rows, rule)
            if bad.num_rows:
                problems.append(f"{dataset} holds {plural(bad.num_rows, 'row')} that fail {rule.name} ({rule.words}), "
                                f"e.g. {_example(bad, key, rule)}: declare it with expect_or_drop")
        quality = _progress(last, dataset).data_quality
        assert quality is not None
        writes = [c for c in table.history() if c.operation == "WRITE"]
        written = writes[-1].metric("numOutputRows") if writes else rows.num_rows
        if quality.expectations:
            first = quality.expectations[0]
            candidates = first.passed_records + first.failed_records
            if written + quality.dropped_records != candidates:
                problems.append(f"{dataset}'s last computation wrote {n(written)} rows and the event log dropped "
                                f"{n(quality.dropped_records)} of {n(candidates)} candidate rows "
                                f"({n(candidates - quality.dropped_records)} should remain)")
        shown.append(f"{dataset} {n(written)} rows + {n(quality.dropped_records)} dropped")
    return Outcome.from_problems(problems, "; ".join(shown) + " = the candidate rows; no silver row fails a drop rule")


def _example(bad: pa.Table, key: str, rule: rp.Rule) -> str:
    row = bad.slice(0, 1).to_pylist()[0]
    columns = [c for c in row if c != key and c in rule.constraint]
    values = ", ".join(f"{c} {fmt(row[c])}" for c in columns[:2])
    return f"{fmt(row[key])}" + (f" ({values})" if values else "")


@check("06.scd1_encounters")
def scd1_encounters(ctx: Context) -> Outcome:
    """silver.encounters_dp equals lab 02's clean encounters over the landing volume
    (:func:`medilake_lab.grader.reference.silver.expected_clean`, without the derived length of
    stay), key for key and value for value. Rows holding another delivered version than the
    newest by ``updated_at`` are named first (sequenced by ingestion instead of the change time)."""
    name, feed = SILVER["encounters"], "encounters"
    volume, erased = _volume(ctx), ctx.erased_patients
    _delivered(ctx, feed)
    expected = rp.clean(feed, volume, erased)
    derived = ref.DERIVED[feed][0]
    columns = [c for c in expected.column_names if c != derived]
    key = feeds.FEEDS[feed].key
    records = rp.records(feed, volume, erased)
    diff = compare(name, ctx.rows(name, columns), expected.select(columns), [key], [c for c in columns if c != key],
                   versions=records.filter(records["_reason"].is_null()))
    if diff.ok:
        return Outcome(True, f"{n(diff.rows)} encounters, each its newest valid version by updated_at, deletes "
                             f"applied (batches {', '.join(feeds.delivered_batches(volume, feed))})")
    return Outcome(False, _stale(diff, records) + describe(diff))


def _stale(diff: Diff, records: pa.Table) -> str:
    """Leading words when rows hold an older delivered version than the newest (else "")."""
    if not diff.other_version:
        return ""
    key, (have, newest) = next(iter(diff.other_version.items()))
    batch = {(r["encounter_id"], r["updated_at"]): r["_batch"]
             for r in records.select(["encounter_id", "updated_at", "_batch"]).to_pylist()}
    return (f"{plural(len(diff.other_version), 'encounter')} hold an older version than their newest by updated_at, "
            f"e.g. {key_text(key)} holds the version updated {fmt(have)} (batch {batch.get((key[0], have), '?')}), "
            f"not {fmt(newest)} (batch {batch.get((key[0], newest), '?')}): sequence the changes by updated_at (the "
            "change time), not by _batch_id or file order — ")


@check("06.gold_values")
def gold_values(ctx: Context) -> Outcome:
    """The gold views equal the recomputation from lab 02's clean rows of the landing volume
    (:func:`medilake_lab.grader.reference.pipeline.gold`): encounters and distinct patients per
    ``encounter_class``;
    results and abnormal results (``value < ref_low OR value > ref_high``) per ``loinc_code`` and
    ``test_name``. Counts must match exactly. A view computed before an erasure is compared
    with the recomputation that still counts the erased patient (lab 07 may re-run the pipeline
    or leave the aggregates, which hold no patient's rows)."""
    for feed in rp.FEEDS:
        _delivered(ctx, feed)
    problems, shown = [], []
    for name, (keys, values) in GOLD.items():
        expected = rp.gold(_volume(ctx), _erased_before(ctx, _written(ctx.require(name))))[name]
        diff = compare(name, ctx.rows(name, keys + values), expected, keys, values)
        if not diff.ok:
            problems.append(describe(diff))
        shown.append(f"{name} {plural(diff.rows, 'row')}")
    return Outcome.from_problems(problems, "; ".join(shown) + " equal the recomputation from lab 02's clean rows")


@check("06.incremental_update")
def incremental_update(ctx: Context) -> Outcome:
    """The landing volume holds a delivery after batches 001–003, and in each streaming table the
    commit that first wrote rows of it (the first STREAMING UPDATE taking the rows since the last
    TRUNCATE beyond the bundled batches' lines) is epochId > 0 of the query of its first commit,
    with no TRUNCATE before it, and wrote exactly the new files' lines. A later full refresh or
    no-data update is allowed. Row counts are those the log recorded, so every landed line counts
    (also lines of patients erased since)."""
    problems, shown = [], []
    for feed, name in BRONZE.items():
        delivered = _delivered(ctx, feed)
        bundled = sum(lines for b, lines in delivered.items() if b in feeds.BATCHES)
        new = {b: lines for b, lines in delivered.items() if b not in feeds.BATCHES}
        if not new:
            problems.append(f"the lab06 landing volume holds only the bundled {feed} batches "
                            f"({', '.join(delivered)}): deliver batch 004 (`medilake_lab deliver --volume lab06`) "
                            "and run the pipeline again")
            continue
        problem, words, target = _judge_increment(name, ctx.require(name).history(), bundled, sum(new.values()), new)
        if target is not None:
            problem = _read_in_checkpoint(ctx, name, target, {f"{feed}_{b}{feeds.FILE_SUFFIX}" for b in new})
        if problem:
            problems.append(problem)
        else:
            shown.append(words)
    return Outcome.from_problems(problems, "; ".join(shown) + " — the checkpoint lists only the new files")


def _read_in_checkpoint(ctx: Context, name: str, target: Commit, files: set[str]) -> str:
    """A problem when the flow's checkpoint generation of ``target``'s query (SDP's
    ``<home>/storage/_checkpoints/spark_catalog/<schema>/<table>/<flow>/<n>``) lists other files
    than ``files`` for ``target``'s micro-batch, else "" (also when no generation holds that query:
    the Delta log is then the only evidence)."""
    schema, table = name.split(".")
    root = home(PIPELINE, ctx.warehouse) / "storage" / "_checkpoints" / "spark_catalog" / schema / table / table
    generations = sorted(root.iterdir(), key=lambda p: p.name) if root.is_dir() else []
    epoch = int(str(target.param("epochId")))
    for generation in (g for g in generations if g.name.isdigit()):
        cp = read_checkpoint(generation)
        if cp.query_id == target.query_id:
            read = sorted({f.name for f in cp.files_of(epoch)})
            if set(read) != files:
                return (f"checkpoint {generation} says micro-batch {epoch} of {name} read "
                        f"{', '.join(read) or 'no file'}, not only {', '.join(sorted(files))}")
    return ""


def _judge_increment(name: str, history: list[Commit], bundled: int, lines: int,
                     new: dict[str, int]) -> tuple[str, str, Commit | None]:
    """(problem, "", None) or ("", what passed, the commit that read the new files) for one
    streaming table (see :func:`incremental_update`)."""
    stream = [c for c in history if c.is_streaming]
    if not stream:
        return f"{name} has no STREAMING UPDATE commit", "", None
    first, batches = stream[0], ", ".join(new)
    since, truncated, target = 0, None, None
    for c in history:
        if c.version < first.version:
            continue
        if c.kind is Kind.TRUNCATE:
            since, truncated = 0, c
        elif c.is_streaming:
            since += c.metric("numOutputRows")
            if since > bundled:
                target = c
                break
    if target is None:
        return (f"{name} has not read batch {batches} yet ({n(since)} rows since v{first.version}, the bundled "
                f"batches have {n(bundled)} lines): run the pipeline again after the delivery"), "", None
    rows, epoch = target.metric("numOutputRows"), str(target.param("epochId"))
    if target is first:
        return (f"{name} read batch {batches} in its first update (v{first.version} epochId {epoch}, {n(rows)} rows): "
                "run the pipeline once before the delivery and once after it, so the second update reads only the "
                "new file"), "", None
    if truncated is not None or target.query_id != first.query_id or epoch == "0":
        cut = f"v{truncated.version} TRUNCATE, then " if truncated is not None else ""
        every = " = every landed line" if rows == bundled + lines else f" (the files have {n(bundled + lines)} lines)"
        return (f"{name}: {cut}v{target.version} STREAMING UPDATE epochId {epoch} of query {_short(target.query_id)} "
                f"(run 1: {_short(first.query_id)}) wrote {n(rows)} rows{every}"
                ": a full refresh re-read every file where an incremental update was asked for; run `medilake_lab "
                "pipeline run` without --full-refresh after the delivery"), "", None
    if rows != lines:
        return (f"{name}: v{target.version} STREAMING UPDATE epochId {epoch} wrote {n(rows)} rows, batch {batches} "
                f"has {n(lines)} lines"), "", None
    return "", (f"{name} v{target.version} epochId {epoch} of query {_short(first.query_id)} read only batch "
                f"{batches} ({n(rows)} rows)"), target
