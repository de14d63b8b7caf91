"""The event log of a kit-run declarative pipeline (lab 06): rows shaped like Lakeflow's.

Open-source Spark Declarative Pipelines keep no event log; the client only receives one-line
messages. The kit's driver (:mod:`medilake_lab.runtime.sdp_driver`) records what it registered
and what happened, and after every update (not a dry run) appends these rows to the Delta table
``<warehouse>/volumes/pipelines/<name>/event_log``, one row per event (:data:`SCHEMA`):

``id`` (uuid), ``timestamp`` (naive UTC), ``event_type``, ``level`` (INFO / ERROR), ``message``,
``origin`` (``pipeline_name``, ``update_id``, ``flow_name``, ``dataset_name``), ``details``
(a JSON string: ``{"<event_type>": {...}}`` as in Lakeflow, so ``details:flow_progress`` there is
``get_json_object(details, '$.flow_progress…')`` in Spark SQL and ``details->'$.flow_progress…'``
in DuckDB).

Per update, in this order:

=======================  ===================================================================
event_type               details.<event_type>
=======================  ===================================================================
``create_update``        ``cause`` (``USER_ACTION``), ``full_refresh`` (bool), and the kit's
                         ``spec_path`` (absolute) and ``libraries`` (the spec's globs)
``dataset_definition``   per dataset: ``dataset_type`` (``STREAMING_TABLE`` /
                         ``MATERIALIZED_VIEW`` / ``VIEW``), kit: ``comment``, ``source_file``
``flow_definition``      per flow: ``output_dataset``, ``flow_type`` (``APPEND`` for a streaming
                         flow, ``COMPLETE`` for a recomputed one), ``input_datasets``,
                         ``expectations`` [``name``, ``constraint``, ``action`` WARN/DROP/FAIL]
                         (kit: ``constraint`` is the rule's SQL; inputs are the pipeline's
                         datasets named in the flow's query)
``flow_progress``        per flow with expectations: ``status`` (COMPLETED / FAILED) and
                         ``data_quality``: ``dropped_records``, ``expectations`` [``name``,
                         ``dataset``, ``passed_records``, ``failed_records``]
``update_progress``      ``state``: COMPLETED or FAILED (kit: ``seconds``)
=======================  ===================================================================

Everything here is plain Python (no Spark): the driver supplies what it saw.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from medilake_lab.runtime.expectations import Counts, Expectation

#: Spark DDL of the event-log table.
SCHEMA = ("id STRING, timestamp TIMESTAMP, event_type STRING, level STRING, message STRING, "
          "origin STRUCT<pipeline_name: STRING, update_id: STRING, flow_name: STRING, dataset_name: STRING>, "
          "details STRING")
DatasetType = Literal["STREAMING_TABLE", "MATERIALIZED_VIEW", "VIEW"]
#: Lakeflow's action names of the kit's ``warn`` / ``drop`` / ``fail``.
ACTIONS = {"warn": "WARN", "drop": "DROP", "fail": "FAIL"}

_SQL_DATASET = re.compile(
    r"CREATE\s+(?:OR\s+REFRESH\s+)?(?P<kind>MATERIALIZED\s+VIEW|STREAMING\s+TABLE|TEMPORARY\s+VIEW|VIEW)"
    r"\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>[\w.`]+)", re.IGNORECASE)
_SQL_FLOW = re.compile(r"CREATE\s+FLOW\s+(?P<name>[\w.`]+)\s+AS\s+INSERT\s+INTO\s+(?:ONCE\s+)?(?P<target>[\w.`]+)",
                       re.IGNORECASE)
_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_KINDS: dict[str, DatasetType] = {"MATERIALIZED VIEW": "MATERIALIZED_VIEW", "STREAMING TABLE": "STREAMING_TABLE",
                                  "TEMPORARY VIEW": "VIEW", "VIEW": "VIEW"}


@dataclass(frozen=True)
class Dataset:
    """A dataset the pipeline declares: ``name`` as declared (``silver.x``, a view's bare name),
    ``dataset_type``, ``comment`` and ``source_file`` (relative to the spec's folder)."""

    name: str
    dataset_type: DatasetType
    comment: str | None = None
    source_file: str | None = None


@dataclass
class Flow:
    """A flow: ``name``, ``target`` dataset, the text of its query (``query``: SQL or the printed
    Spark Connect plan, searched for input dataset names) and its expectations."""

    name: str
    target: str
    query: str = ""
    expectations: list[Expectation] = field(default_factory=list)


def sql_definitions(sql: str, source_file: str | None = None) -> tuple[list[Dataset], list[Flow]]:
    """The datasets and flows a pipeline SQL file declares (``CREATE MATERIALIZED VIEW`` /
    ``STREAMING TABLE`` / ``TEMPORARY VIEW`` / ``VIEW``, each with its own flow, and ``CREATE FLOW
    … AS INSERT INTO``). Only statement heads are read; Spark parses the rest when it runs."""
    datasets, flows = [], []
    for statement in _SQL_COMMENT.sub(" ", sql).split(";"):
        if match := _SQL_FLOW.search(statement):
            flows.append(Flow(_name(match["name"]), _name(match["target"]), statement.strip()))
        elif match := _SQL_DATASET.search(statement):
            name = _name(match["name"])
            comment = re.search(r"\bCOMMENT\s+'((?:[^']|'')*)'", statement[match.end():], re.IGNORECASE)
            datasets.append(Dataset(name, _KINDS[" ".join(match["kind"].upper().split())],
                                    comment[1].replace("''", "'") if comment else None, source_file))
            if " AS " in f" {statement.upper()} ":
                flows.append(Flow(name, name, statement.strip()))
    return datasets, flows


def _name(identifier: str) -> str:
    return identifier.replace("`", "")


def input_datasets(flow: Flow, names: Iterable[str]) -> list[str]:
    """The pipeline's datasets (``names``) that ``flow``'s query names, other than its target,
    sorted. A name counts when it stands alone (``bronze.x`` is not found in ``bronze.x_old``)."""
    return sorted(n for n in set(names) if n != flow.target
                  and re.search(rf"(?<![\w.`]){re.escape(n)}(?![\w`])", flow.query.replace("`", "")))


def _event(event_type: str, at: datetime, pipeline: str, update_id: str, details: dict, message: str,
           flow: str | None = None, dataset: str | None = None, level: str = "INFO") -> dict:
    return {"id": str(uuid.uuid4()), "timestamp": at, "event_type": event_type, "level": level,
            "message": message,
            "origin": {"pipeline_name": pipeline, "update_id": update_id, "flow_name": flow,
                       "dataset_name": dataset},
            "details": json.dumps({event_type: details}, sort_keys=True)}


@dataclass
class Update:
    """One update (a run) of a pipeline, as the driver saw it; :meth:`events` renders its rows.

    Attributes
    ----------
    pipeline: the spec's ``name``.
    spec_path: the spec file (absolute). libraries: the spec's include globs.
    full_refresh: whether every streaming table was reset. started: naive UTC start time.
    datasets / flows: what the definitions registered, in registration order.
    """

    pipeline: str
    spec_path: str
    libraries: list[str]
    full_refresh: bool
    started: datetime
    datasets: list[Dataset] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)
    update_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def flow_type(self, flow: Flow) -> str:
        """``APPEND`` into a streaming table, else ``COMPLETE`` (recomputed from its input)."""
        kinds = {d.name: d.dataset_type for d in self.datasets}
        return "APPEND" if kinds.get(flow.target) == "STREAMING_TABLE" else "COMPLETE"

    def events(self, ended: datetime, state: Literal["COMPLETED", "FAILED"], counts: Mapping[str, Counts],
               failed_flows: Iterable[str] = (), seconds: float | None = None) -> list[dict]:
        """The update's event rows (see the module docstring).

        ``counts``: flow name → its expectation counts (flows with expectations); a flow in
        ``failed_flows`` gets status FAILED (its counts say which rule stopped it).
        """
        args = (self.pipeline, self.update_id)
        failed = set(failed_flows)
        rows = [_event("create_update", self.started, *args,
                       {"cause": "USER_ACTION", "full_refresh": self.full_refresh, "spec_path": self.spec_path,
                        "libraries": self.libraries},
                       f"Update {self.update_id[:8]} started "
                       f"({'full refresh' if self.full_refresh else 'incremental'}).")]
        for d in self.datasets:
            rows.append(_event("dataset_definition", self.started, *args,
                               {"dataset_type": d.dataset_type, "comment": d.comment, "source_file": d.source_file},
                               f"Dataset '{d.name}' defined as {d.dataset_type}.", dataset=d.name))
        names = [d.name for d in self.datasets]
        for f in self.flows:
            rows.append(_event("flow_definition", self.started, *args,
                               {"output_dataset": f.target, "flow_type": self.flow_type(f),
                                "input_datasets": input_datasets(f, names),
                                "expectations": [{"name": e.name, "constraint": e.constraint,
                                                  "action": ACTIONS[e.action]} for e in f.expectations]},
                               f"Flow '{f.name}' defined.", flow=f.name, dataset=f.target))
        for f in self.flows:
            if f.name not in counts:
                continue
            c = counts[f.name]
            status = "FAILED" if f.name in failed else "COMPLETED"
            quality = {"dropped_records": c.dropped,
                       "expectations": [{"name": e.name, "dataset": f.target,
                                         "passed_records": c.rows - c.failed[e.name],
                                         "failed_records": c.failed[e.name]} for e in f.expectations]}
            rows.append(_event("flow_progress", ended, *args, {"status": status, "data_quality": quality},
                               f"Flow '{f.name}' has {status}.", flow=f.name, dataset=f.target,
                               level="ERROR" if status == "FAILED" else "INFO"))
        rows.append(_event("update_progress", ended, *args, {"state": state, "seconds": seconds},
                           f"Update {self.update_id[:8]} is {state}.", level="ERROR" if state == "FAILED" else "INFO"))
        return rows
