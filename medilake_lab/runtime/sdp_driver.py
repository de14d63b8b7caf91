"""The Python client that ``spark-pipelines`` runs, in the kit's version (see :mod:`.pipelines`).

Not imported by the kit: :func:`medilake_lab.runtime.pipelines.command` runs this file in place
of pyspark's own ``pyspark/pipelines/cli.py``, with ``SPARK_REMOTE`` naming the server (``local``:
pyspark starts one for the run, as Spark's ``SparkPipelines`` launcher has it do; or a kept
server's ``sc://localhost:<port>``, :func:`medilake_lab.runtime.pipelines.start_server`). It does
what that CLI's ``run`` does (pyspark 4.2.0), with two differences the stock CLI cannot express:

* the spec's ``storage`` (checkpoints) is replaced by the kit's per-pipeline folder, so one
  project runs against any warehouse (``-w``);
* before the graph is registered, the schemas are created at ``<warehouse>/<schema>`` (a pipeline
  may not run ``CREATE SCHEMA`` itself: ``UNSUPPORTED_PIPELINE_SPARK_SQL_COMMAND``), so that its
  tables land at ``<warehouse>/<schema>/<table>`` rather than Hive's ``<warehouse>/<schema>.db``.

After every update (not a dry run), even a failed one, it appends the update's events to the
pipeline's event-log Delta table (``EVENT_LOG``, see :mod:`medilake_lab.runtime.event_log`): what
the definitions registered (datasets, flows with their expectations, recorded by a subclass of
SDP's registry), the expectation counts of the flows that declare some (recomputed in this Spark
Connect session by :func:`medilake_lab.runtime.expectations.count`) and the update's outcome.

Usage (argv): ``run|dry-run SPEC STORAGE EVENT_LOG FULL_REFRESH(0|1) SCHEMA=LOCATION...``. A failure prints
its traceback (to the run's log) and, last, one line ``MEDILAKE-ERROR: <class>: <message>``
that the kit shows; the exit status is then 1.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from medilake_lab.runtime.event_log import DatasetType

ERROR_MARK = "MEDILAKE-ERROR: "
PORT_ENV = "MEDILAKE_CONNECT_PORT"  # the Spark Connect server's port, chosen by the kit for each run


def main(argv: list[str]) -> int:
    """Run or dry-run the pipeline of ``argv`` (see the module docstring); returns the exit status."""
    import yaml
    from pyspark.pipelines import cli
    from pyspark.pipelines.logging_utils import log_with_curr_timestamp
    from pyspark.pipelines.spark_connect_graph_element_registry import SparkConnectGraphElementRegistry
    from pyspark.pipelines.spark_connect_pipeline import create_dataflow_graph, handle_pipeline_events, start_run
    from pyspark.sql import SparkSession

    from medilake_lab.runtime import event_log, expectations

    action, spec_file, storage, log_path, full_refresh, *schemas = argv
    spec_path = Path(spec_file).resolve()
    # the spec with the kit's storage (not dataclasses.replace: it re-validates normalized globs)
    spec = cli.unpack_pipeline_spec({**yaml.safe_load(spec_path.read_text(encoding="utf-8")), "storage": storage})
    update = event_log.Update(spec.name, str(spec_path), [lib.include for lib in spec.libraries],
                              full_refresh == "1", _now())
    queries: dict[str, Callable] = {}  # flow name -> query function, for flows with expectations

    class Registry(SparkConnectGraphElementRegistry):
        """Registers as SDP's, and records every dataset and flow (with its expectations)."""

        def register_output(self, output) -> None:  # noqa: ANN001 - pyspark.pipelines.output.Output
            super().register_output(output)
            kind = DATASET_TYPES.get(type(output).__name__)
            if kind:
                update.datasets.append(event_log.Dataset(output.name, kind, output.comment,
                                                         _relative(output.source_code_location.filename, spec_path)))

        def register_flow(self, flow) -> None:  # noqa: ANN001 - pyspark.pipelines.flow.Flow
            frames: list = []

            def query():  # noqa: ANN202 - the flow's DataFrame, kept to read its plan
                frames.append(flow.func())
                return frames[-1]

            super().register_flow(dataclasses.replace(flow, func=query))
            plan = str(frames[-1]._plan.plan(self._client)).replace("\\n", " ")  # the query as text
            update.flows.append(event_log.Flow(flow.name, flow.target, plan, expectations.declared(flow.func)))
            if expectations.declared(flow.func):
                queries[flow.name] = flow.func

        def register_sql(self, sql_text: str, file_path: Path) -> None:
            super().register_sql(sql_text, file_path)
            datasets, flows = event_log.sql_definitions(sql_text, Path(file_path).as_posix())
            update.datasets.extend(datasets)
            update.flows.extend(flows)

    use_kit_port()
    builder = SparkSession.builder.config("spark.sql.connect.serverStacktrace.enabled", "false")
    for key, value in spec.configuration.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    started, failed_flows = time.perf_counter(), list[str]()
    state: Literal["COMPLETED", "FAILED"] = "FAILED"
    try:
        for schema, location in (item.split("=", 1) for item in schemas):
            if not spark.catalog.databaseExists(schema):  # (IF NOT EXISTS would log Hive's error)
                spark.sql(f"CREATE SCHEMA IF NOT EXISTS `{schema}` LOCATION '{location}'")
        log_with_curr_timestamp("Creating dataflow graph...")
        graph = create_dataflow_graph(spark, default_catalog=spec.catalog, default_database=spec.database,
                                      sql_conf=spec.configuration)
        log_with_curr_timestamp("Registering graph elements...")
        cli.register_definitions(spec_path, Registry(spark, graph), spec, spark, graph)
        log_with_curr_timestamp("Starting run...")
        events = start_run(spark, graph, full_refresh=[], full_refresh_all=full_refresh == "1", refresh=[],
                           dry=action == "dry-run", storage=spec.storage)
        handle_pipeline_events(_watch(events, failed_flows))
        state = "COMPLETED"
    finally:
        if action == "run" and update.flows:
            counts = {}
            for name, query in queries.items():
                try:
                    counts[name] = expectations.count(query)
                except Exception as exc:  # noqa: BLE001 - an input that is missing after a failed update
                    print(f"expectation counts of flow {name} not taken: {type(exc).__name__}: {exc}")
            failed = {f.name for f in update.flows if any(_same_flow(f.name, x) for x in failed_flows)}
            rows = update.events(_now(), state, counts, failed, round(time.perf_counter() - started, 1))
            spark.createDataFrame(rows, event_log.SCHEMA).write.format("delta").mode("append").save(log_path)
            log_with_curr_timestamp(f"Recorded {len(rows)} events of update {update.update_id} in {log_path}")
        spark.stop()
    return 0


#: SDP's output classes → Lakeflow's dataset types (sinks are not datasets)
DATASET_TYPES: dict[str, DatasetType] = {"MaterializedView": "MATERIALIZED_VIEW", "StreamingTable": "STREAMING_TABLE",
                 "TemporaryView": "VIEW"}
#: ``Flow 'spark_catalog.silver.x' has FAILED.`` (as :data:`medilake_lab.runtime.pipelines.FLOW_FAILED`)
FLOW_FAILED = re.compile(r"Flow '?([^'\s]+?)'?\.? has FAILED")


def use_kit_port() -> None:
    """Make pyspark's client use the server's port (``$MEDILAKE_CONNECT_PORT``, the properties
    file's) wherever it would use Spark's fixed 15002: the ``sc://localhost`` a local start
    connects to, and its ``stop()``."""
    if os.environ.get(PORT_ENV):
        from pyspark.sql.connect.client.core import DefaultChannelBuilder

        DefaultChannelBuilder.default_port = staticmethod(lambda: int(os.environ[PORT_ENV]))  # type: ignore[method-assign]


def run_as_script(main: Callable[[], int]) -> None:
    """Exit with ``main()``'s status; on a failure print its traceback (to the run's log) and, last,
    one line ``MEDILAKE-ERROR: <class>: <message>`` that the kit shows, and exit with 1."""
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001 - the kit shows one line; the traceback goes to the log
        traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"{ERROR_MARK}{type(exc).__name__}: {first}", file=sys.stderr, flush=True)
        sys.exit(1)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _relative(filename: str | None, spec_path: Path) -> str | None:
    if not filename:
        return None
    path = Path(filename)
    return path.relative_to(spec_path.parent).as_posix() if path.is_relative_to(spec_path.parent) else path.as_posix()


def _watch(events: Iterator[dict], failed: list[str]) -> Iterator[dict]:
    """Pass SDP's events on, noting the flows whose event says they FAILED."""
    for result in events:
        event = result.get("pipeline_event_result")
        if event is not None and (match := FLOW_FAILED.search(event.event.message)):
            failed.append(match.group(1))
        yield result


def _same_flow(name: str, reported: str) -> bool:
    """Whether SDP's qualified name (``spark_catalog.silver.x``) is the flow registered as ``name``."""
    return reported == name or reported.endswith("." + name)


if __name__ == "__main__":
    run_as_script(lambda: main(sys.argv[1:]))
