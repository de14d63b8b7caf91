"""Read-only reader of a declarative pipeline's event log and spec (no JVM): what lab 06 grades from.

The kit's pipeline client (:mod:`medilake_lab.runtime.sdp_driver`) appends, per update, rows to a
Delta table at ``<warehouse>/volumes/pipelines/<name>/event_log`` in the shape of Lakeflow's
event log (one row per event; ``details`` a JSON string keyed by the event type)::

    id STRING, timestamp TIMESTAMP, event_type STRING, level STRING, message STRING,
    origin STRUCT<pipeline_name, update_id, flow_name, dataset_name STRING>, details STRING

=====================  ======================================================================
``event_type``         ``details`` (read here)
=====================  ======================================================================
create_update          ``create_update``: cause, full_refresh, spec_path, libraries
dataset_definition     ``dataset_definition``: dataset_type (STREAMING_TABLE, MATERIALIZED_VIEW, VIEW)
flow_definition        ``flow_definition``: output_dataset, flow_type, expectations
                       [{name, constraint, action: WARN | DROP | FAIL}] (the last is the kit's)
flow_progress          ``flow_progress``: status, data_quality {dropped_records, expectations
                       [{name, dataset, passed_records, failed_records}]}
update_progress        ``update_progress``: state (COMPLETED, FAILED…)
=====================  ======================================================================

Events are grouped by ``origin.update_id`` into :class:`Update` objects, oldest first (by their
first event's time). Dataset names lose the ``spark_catalog.`` prefix and backticks
(:func:`dataset_name`). Every problem raises :class:`EventLogError` naming the table and event.

The spec ``spark-pipeline.yml`` is read with :func:`read_spec` into :class:`PipelineSpec`, the
fields the SDP CLI (pyspark 4.2) accepts: ``name``, ``storage``, ``catalog``, ``database``,
``configuration``, ``libraries`` (``- glob: {include: …}``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medilake_lab.errors import EventLogError, TableMissingError
from medilake_lab.grader.delta import Table
from medilake_lab.runtime import config

PIPELINES_DIR = "pipelines"  # = medilake_lab.runtime.pipelines.PIPELINES_DIR (not imported: it pulls the runtime)
EVENT_LOG_DIR = "event_log"


def home(pipeline: str, warehouse: str | os.PathLike | None = None) -> Path:
    """``<warehouse>/volumes/pipelines/<pipeline>``: the kit's folders of a pipeline."""
    return config.volume_dir(warehouse) / PIPELINES_DIR / pipeline


def dataset_name(name: str | None) -> str:
    """``"spark_catalog.silver.x"`` or ``"`silver`.`x`"`` → ``"silver.x"``; None → ``""``."""
    bare = (name or "").replace("`", "")
    return bare.removeprefix("spark_catalog.")


class _Details(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateUpdate(_Details):
    """``details.create_update``: why the update started and from which spec."""

    cause: str | None = None
    full_refresh: bool = False
    spec_path: str | None = None
    libraries: list[object] = []


class DatasetDefinition(_Details):
    """``details.dataset_definition``: the kind of a dataset."""

    dataset_type: str


class DeclaredExpectation(_Details):
    """One expectation of a flow: ``name``, ``constraint`` (SQL) and ``action``."""

    name: str
    constraint: str = ""
    action: Literal["WARN", "DROP", "FAIL"]


class FlowDefinition(_Details):
    """``details.flow_definition``: the flow's target, type and declared expectations."""

    output_dataset: str
    flow_type: str | None = None
    expectations: list[DeclaredExpectation] = []


class ExpectationCount(_Details):
    """One expectation's counts of an update: ``passed_records``/``failed_records`` (rows)."""

    name: str
    dataset: str = ""
    passed_records: int
    failed_records: int


class DataQuality(_Details):
    """``flow_progress.data_quality``: rows dropped by the flow and counts per expectation."""

    dropped_records: int = 0
    expectations: list[ExpectationCount] = []


class FlowProgress(_Details):
    """``details.flow_progress``: a flow's status and data quality in an update."""

    status: str
    data_quality: DataQuality | None = None


class UpdateProgress(_Details):
    """``details.update_progress``: the update's state."""

    state: str


_DETAILS: dict[str, type[_Details]] = {
    "create_update": CreateUpdate, "dataset_definition": DatasetDefinition, "flow_definition": FlowDefinition,
    "flow_progress": FlowProgress, "update_progress": UpdateProgress,
}


@dataclass
class Update:
    """One pipeline update (a run), from its events.

    ``id``: the update id; ``started``: its first event's time (naive UTC); ``create``: its
    create_update details (None when absent); ``state``: its last update_progress state (None
    when it has none); ``datasets``: dataset → dataset_type; ``flows``: flow → FlowDefinition;
    ``progress``: flow → its last FlowProgress.
    """

    id: str
    started: datetime
    create: CreateUpdate | None = None
    state: str | None = None
    datasets: dict[str, str] = field(default_factory=dict)
    flows: dict[str, FlowDefinition] = field(default_factory=dict)
    progress: dict[str, FlowProgress] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return self.state == "COMPLETED"

    def flow_into(self, dataset: str) -> tuple[str, FlowDefinition] | None:
        """The (first) flow whose output is ``dataset`` and its definition, or None."""
        return next(((f, d) for f, d in self.flows.items() if dataset_name(d.output_dataset) == dataset), None)

    def progress_of(self, dataset: str) -> FlowProgress | None:
        """The flow_progress of the flow writing ``dataset`` (by flow definition, else by the
        progress event's flow name), or None."""
        found = self.flow_into(dataset)
        if found and found[0] in self.progress:
            return self.progress[found[0]]
        return self.progress.get(dataset)


COLUMNS = ["id", "timestamp", "event_type", "origin", "details"]


def read_event_log(pipeline: str, warehouse: str | os.PathLike | None = None) -> list[Update]:
    """The updates of a pipeline's event log, oldest first.

    Raises
    ------
    EventLogError: no event log (names the folder and how to make one), a column missing, or an
        event whose ``details`` is not JSON of the event type's shape (names the event).
    DamagedTableError: the event log's Delta log is damaged (see :mod:`medilake_lab.grader.delta`).
    """
    root = home(pipeline, warehouse)
    try:
        table = Table(f"{pipeline}.{EVENT_LOG_DIR}", root.parent)  # <pipelines>/<pipeline>/event_log
    except TableMissingError:
        raise EventLogError(f"pipeline {pipeline} has no event log at {root / EVENT_LOG_DIR}: run the pipeline "
                            "with `medilake_lab pipeline run`, which writes it") from None
    absent = [c for c in COLUMNS if c not in table.columns]
    if absent:
        raise EventLogError(f"the event log {table.path} lacks column(s) {', '.join(absent)}")
    rows = table.query("SELECT id, timestamp, event_type, origin, details FROM t ORDER BY timestamp").to_pylist()
    return updates(rows, str(table.path))


def updates(rows: Iterable[dict], where: str = "the event log") -> list[Update]:
    """Group event rows (dicts with ``id``, ``timestamp``, ``event_type``, ``origin`` (dict) and
    ``details`` (JSON text)) in time order into updates; raises EventLogError for bad details."""
    found: dict[str, Update] = {}
    for row in rows:
        origin = row.get("origin") or {}
        update_id = origin.get("update_id") or "?"
        when = row["timestamp"].replace(tzinfo=None) if row.get("timestamp") else datetime.min
        update = found.setdefault(update_id, Update(update_id, when))
        kind = row.get("event_type") or ""
        if kind not in _DETAILS:
            continue
        details = _details(kind, row, where)
        if isinstance(details, CreateUpdate):
            update.create = details
        elif isinstance(details, DatasetDefinition):
            update.datasets[dataset_name(origin.get("dataset_name"))] = details.dataset_type
        elif isinstance(details, FlowDefinition):
            update.flows[dataset_name(origin.get("flow_name")) or dataset_name(details.output_dataset)] = details
        elif isinstance(details, FlowProgress):
            update.progress[dataset_name(origin.get("flow_name") or origin.get("dataset_name"))] = details
        elif isinstance(details, UpdateProgress):
            update.state = details.state
    return sorted(found.values(), key=lambda u: u.started)


def _details(kind: str, row: dict, where: str) -> _Details:
    try:
        payload = json.loads(row.get("details") or "{}")[kind]
        return _DETAILS[kind].model_validate(payload)
    except (ValueError, TypeError, KeyError, ValidationError) as exc:
        why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else f"no '{kind}' object in valid JSON"
        raise EventLogError(f"{where}: {kind} event {row.get('id')} has unreadable details ({why})") from None


# ------------------------------------------------------------------------------------------ spec

class Library(BaseModel):
    """One entry of ``libraries``: a glob of definition files (``include``), relative to the spec."""

    model_config = ConfigDict(extra="forbid")
    glob: dict[Literal["include"], str]


class PipelineSpec(BaseModel):
    """A ``spark-pipeline.yml`` (the keys the SDP CLI reads; any other key is an error there too)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    storage: str | None = None  #: required by the SDP CLI; the kit replaces it with the pipeline's folder
    catalog: str | None = None
    database: str | None = None
    schema_: str | None = Field(None, alias="schema")  #: another name of ``database``
    configuration: dict[str, str] = {}
    libraries: list[Library] = []


def read_spec(path: str | os.PathLike) -> PipelineSpec:
    """Parse a pipeline spec. Raises EventLogError naming the file when it is missing, not YAML
    or not a valid spec (the first problem, e.g. ``libraries.0.glob: Field required``)."""
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EventLogError(f"the spec {file} cannot be read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise EventLogError(f"the spec {file} is not valid YAML ({str(exc).splitlines()[0]})") from None
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise EventLogError(f"the spec {file} is not a pipeline spec: {where}: {first['msg']}") from None
