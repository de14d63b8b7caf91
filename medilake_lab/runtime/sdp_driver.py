"""The Python client that ``spark-pipelines`` runs, in the kit's version (see :mod:`.pipelines`).

Not imported by the kit: :func:`medilake_lab.runtime.pipelines.command` passes this file to
Spark's ``org.apache.spark.deploy.SparkPipelines`` launcher in place of pyspark's own
``pyspark/pipelines/cli.py``. It does what that CLI's ``run`` does (pyspark 4.2.0), with two
differences the stock CLI cannot express:

* the spec's ``storage`` (checkpoints) is replaced by the kit's per-pipeline folder, so one
  project runs against any warehouse (``-w``);
* before the graph is registered, the schemas are created at ``<warehouse>/<schema>`` (a pipeline
  may not run ``CREATE SCHEMA`` itself: ``UNSUPPORTED_PIPELINE_SPARK_SQL_COMMAND``), so that its
  tables land at ``<warehouse>/<schema>/<table>`` rather than Hive's ``<warehouse>/<schema>.db``.

After an update, the flows whose query functions carry kit expectations
(:mod:`medilake_lab.runtime.expectations`) get their passed/failed counts appended to the
event-log Delta table ``EVENT_LOG`` (SPIKE: batch flows only).

Usage (argv): ``run|dry-run SPEC STORAGE EVENT_LOG FULL_REFRESH(0|1) SCHEMA=LOCATION...``. A failure prints
its traceback (to the run's log) and, last, one line ``MEDILAKE-ERROR: <class>: <message>``
that the kit shows; the exit status is then 1.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

ERROR_MARK = "MEDILAKE-ERROR: "


def main(argv: list[str]) -> int:
    """Run or dry-run the pipeline of ``argv`` (see the module docstring); returns the exit status."""
    from pyspark.pipelines import cli
    from pyspark.pipelines.logging_utils import log_with_curr_timestamp
    from pyspark.pipelines.spark_connect_graph_element_registry import SparkConnectGraphElementRegistry
    from pyspark.pipelines.spark_connect_pipeline import create_dataflow_graph, handle_pipeline_events, start_run
    from pyspark.sql import SparkSession

    from medilake_lab.runtime import expectations

    class Registry(SparkConnectGraphElementRegistry):
        """Registers as SDP's, and remembers the flows that declare expectations."""

        checked: dict[str, tuple[str, Callable]] = {}

        def register_flow(self, flow) -> None:  # noqa: ANN001 - pyspark.pipelines.flow.Flow
            super().register_flow(flow)
            if expectations.declared(flow.func):
                self.checked[flow.name] = (flow.target, flow.func)

    action, spec_file, storage, event_log, full_refresh, *schemas = argv
    spec_path = Path(spec_file)
    import yaml

    # the spec with the kit's storage (not dataclasses.replace: it re-validates normalized globs)
    spec = cli.unpack_pipeline_spec({**yaml.safe_load(spec_path.read_text(encoding="utf-8")), "storage": storage})
    builder = SparkSession.builder.config("spark.sql.connect.serverStacktrace.enabled", "false")
    for key, value in spec.configuration.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    try:
        for schema, location in (item.split("=", 1) for item in schemas):
            spark.sql(f"CREATE SCHEMA IF NOT EXISTS `{schema}` LOCATION '{location}'")
        log_with_curr_timestamp("Creating dataflow graph...")
        graph = create_dataflow_graph(spark, default_catalog=spec.catalog, default_database=spec.database,
                                      sql_conf=spec.configuration)
        log_with_curr_timestamp("Registering graph elements...")
        cli.register_definitions(spec_path, Registry(spark, graph), spec, spark, graph)
        log_with_curr_timestamp("Starting run...")
        events = start_run(spark, graph, full_refresh=[], full_refresh_all=full_refresh == "1", refresh=[],
                           dry=action == "dry-run", storage=spec.storage)
        handle_pipeline_events(events)
        if action == "run" and Registry.checked:
            written = expectations.record_counts(spark, spec.name, Registry.checked, event_log)
            log_with_curr_timestamp(f"Recorded expectation counts of {written} flow(s) in {event_log}")
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as exc:  # noqa: BLE001 - the kit shows one line; the traceback goes to the log
        traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"{ERROR_MARK}{type(exc).__name__}: {first}", file=sys.stderr, flush=True)
        sys.exit(1)
