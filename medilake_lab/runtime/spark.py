"""The Delta-enabled SparkSession every notebook and test uses.

``get_spark()`` returns, in order of preference:

1. the active session, when there is one (Databricks notebooks, a learner's own session); when
   it is a local session this module started, the Delta tables created in its warehouse since
   then (by ``catchup`` in a terminal, another notebook) are registered first, so that a
   running notebook sees them (a directory scan: :func:`register_warehouse`);
2. a Spark Connect session when ``SPARK_REMOTE`` is set (Delta must be configured server-side);
3. a new session on :func:`config.spark_master` (``$MEDILAKE_SPARK_MASTER``: default ``local[2]``,
   or a standalone cluster ``spark://host:port``) with the cached Delta jars on the driver's class
   path (:func:`.jars.driver_class_path`, after the kit's local file system jar, :mod:`.local_fs`,
   whose classes local mode uses: files written without a process each; a cluster's executors
   get the Delta jars as ``spark.jars``, which the driver serves), Spark's and Delta's classes
   mapped from the class-data archive ``setup`` wrote (:mod:`.class_archive`, when there is one),
   the Parallel garbage collector unless the environment chose one
   (:func:`config.collector_option`), an in-memory catalog and the warehouse registered as schemas
   ``bronze``, ``silver``, ``gold``.

The in-memory catalog means no embedded Derby metastore and therefore no lock: two notebooks and
the grader can work on one warehouse at once. Table names survive across processes because every
new session registers the Delta directories it finds under ``<warehouse>/<schema>/<table>``
(``get_spark()`` does it again on every call, for the tables created meanwhile).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from medilake_lab.runtime import class_archive, config, local_fs
from medilake_lab.runtime.jars import driver_class_path, require_jars, require_java

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Session setting that marks a local session started here and holds its warehouse root.
WAREHOUSE_CONF = "spark.medilake.warehouse"

#: Errors-only log4j2 configuration of local sessions (Spark's default logs start-up warnings).
LOG_CONFIG = Path(__file__).with_name("log4j2.properties")

#: Lines the JVM writes to stderr on every start that mean nothing to a learner: Spark's launcher
#: always adds ``--add-modules=jdk.incubator.vector`` and the JVM announces it, which a notebook
#: shows as a red stderr box in the first Spark cell.
JVM_NOISE = (b"WARNING: Using incubator modules",)

#: Builder settings that only take effect before the JVM starts; kept modest for a 2-core laptop.
LOCAL_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.catalogImplementation": "in-memory",
    "spark.driver.memory": config.driver_memory(),
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # the JVM's default JIT (C1, then C2 on the idle core): C1 alone (-XX:TieredStopAtLevel=1) cut lab
    # 01's CPU but made lab 02's MERGE loop twice as slow on a quiet 2-core machine (benchmarks/RESULTS.md).
    # get_spark puts the garbage collector's option (config.collector_option) before these.
    "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}",
    "spark.databricks.delta.snapshotPartitions": "2",
}


def get_spark(warehouse: str | os.PathLike | None = None, app_name: str = "medilake-lab",
              master: str | None = None) -> SparkSession:
    """Return a Delta-enabled SparkSession with the warehouse's tables addressable by name.

    Parameters
    ----------
    warehouse: warehouse root (default :func:`medilake_lab.runtime.config.warehouse_dir`).
    app_name: Spark application name.
    master: Spark master URL (default :func:`config.spark_master`: ``$MEDILAKE_SPARK_MASTER`` or
        ``local[2]``).

    Raises
    ------
    SetupError: Java < 17 or missing, or the Delta jars were never fetched (run ``make setup``).
    UsageError: ``$MEDILAKE_SPARK_MASTER`` holds a Spark Connect address (``sc://…``).
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        started_here = active.conf.get(WAREHOUSE_CONF, None)
        if started_here:
            register_warehouse(active, started_here)
        return active
    if os.environ.get("SPARK_REMOTE"):
        return SparkSession.builder.appName(app_name).getOrCreate()

    require_java()
    root = config.warehouse_dir(warehouse)
    root.mkdir(parents=True, exist_ok=True)
    master = master or config.spark_master()
    class_path = driver_class_path()  # every driver's: the class-data archive was written for it
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.driver.extraClassPath", os.pathsep.join(map(str, class_path))))
    if config.is_local(master):  # the driver runs the tasks too: no process per file they write
        for key, value in local_fs.spark_conf(class_path).items():
            builder = builder.config(key, value)
    else:  # a cluster's executors: the driver serves them the Delta jars
        builder = builder.config("spark.jars", ",".join(map(str, require_jars())))
    builder = builder.config("spark.sql.warehouse.dir", str(root)).config(WAREHOUSE_CONF, str(root))
    for key, value in LOCAL_CONF.items():
        builder = builder.config(key, value)
    if collector := config.collector_option():  # read now: the environment may have changed since import
        builder = builder.config("spark.driver.extraJavaOptions",
                                 f"{collector} {LOCAL_CONF['spark.driver.extraJavaOptions']}")
    if archive := class_archive.java_options():  # Spark's classes mapped from `setup`'s CDS archive
        builder = builder.config("spark.driver.defaultJavaOptions", archive)  # (before extraJavaOptions)
    with quiet_jvm_stderr():
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    register_warehouse(spark, root)
    return spark


def fresh_session() -> bool:
    """Give the next notebook of a shared kernel (:class:`medilake_lab.course.notebooks.WarmKernel`)
    a SparkSession of its own on the running SparkContext: streaming queries still active are
    stopped, and a new session (its own SQL settings, temporary views and functions; the same JVM,
    jars and warehouse) becomes the active and default one, which :func:`get_spark` and
    ``SparkSession.builder.getOrCreate()`` return. Pipeline servers the last notebook kept
    (:func:`medilake_lab.runtime.pipelines.start_server`) are stopped first. Returns False (and does
    nothing more) when no local session is running."""
    from pyspark.sql import SparkSession

    from medilake_lab.runtime import pipelines  # here: pipelines imports this module

    pipelines.stop_servers()
    active = SparkSession.getActiveSession()
    if active is None or os.environ.get("SPARK_REMOTE"):
        return False
    for query in active.streams.active:
        query.stop()
    session = active.newSession()
    jvm_class = SparkSession._get_j_spark_session_class(session._sc._jvm)
    jvm_class.setDefaultSession(session._jsparkSession)
    jvm_class.setActiveSession(session._jsparkSession)
    SparkSession._instantiatedSession = session
    SparkSession._activeSession = session
    return True


@contextmanager
def quiet_jvm_stderr() -> Iterator[None]:
    """Within the block, processes started (the JVM) write stderr to a pipe whose reader drops the
    :data:`JVM_NOISE` lines and passes every other line (Spark's errors) on to this process's
    stderr, for as long as they live; this process's own file descriptor 2 is restored when the
    block ends. POSIX only (elsewhere it does nothing)."""
    if os.name != "posix":
        yield
        return
    read_end, write_end = os.pipe()
    passed_on, saved = os.dup(2), os.dup(2)
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)
    threading.Thread(target=_pass_on, args=(read_end, passed_on), daemon=True, name="medilake-jvm-stderr").start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _pass_on(read_end: int, target: int) -> None:
    """Copy lines from ``read_end`` to ``target`` except :data:`JVM_NOISE`, until every writer has
    closed the pipe; then close both."""
    with os.fdopen(read_end, "rb") as lines:
        for line in lines:
            if not line.startswith(JVM_NOISE):
                os.write(target, line)
    os.close(target)


def register_warehouse(spark: SparkSession, warehouse: str | os.PathLike | None = None) -> list[str]:
    """Create schemas ``bronze``/``silver``/``gold`` at ``<warehouse>/<schema>`` and register every
    Delta table directory found there (``<schema>/<table>/_delta_log``) that the session's catalog
    does not list yet. Returns the qualified names of all the Delta tables found
    (``schema.table``), registered now or before. Cheap when nothing is new: one directory scan
    and one ``SHOW TABLES`` per schema."""
    root = Path(warehouse) if warehouse else config.warehouse_dir()
    names = []
    for schema in config.SCHEMAS:
        location = root / schema
        location.mkdir(parents=True, exist_ok=True)
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {schema} LOCATION '{location.as_posix()}'")
        known = {row.tableName.lower() for row in spark.sql(f"SHOW TABLES IN {schema}").collect()
                 if not row.isTemporary}
        found = {d.name.lower(): d for d in sorted(location.iterdir()) if (d / "_delta_log").is_dir()}
        for name, table_dir in found.items():
            if name not in known:
                spark.sql(f"CREATE TABLE IF NOT EXISTS {schema}.{table_dir.name} USING DELTA "
                          f"LOCATION '{table_dir.as_posix()}'")
            names.append(f"{schema}.{table_dir.name}")
        for name in known - set(found):
            if not (location / name).exists():
                _forget_if_moved(spark, schema, name, location / name)
    return names


def _forget_if_moved(spark: SparkSession, schema: str, name: str, folder: Path) -> None:
    """Drop the catalog entry of ``schema.name`` when it points at ``folder``, which no longer
    exists: ``reset``/``catchup`` moved the table into a backup, and a stale entry would make
    ``CREATE TABLE IF NOT EXISTS`` a no-op on a table that is gone. Nothing is on disk there to
    delete; an entry located elsewhere (a table created outside the warehouse) is left alone."""
    from pyspark.errors import AnalysisException

    try:
        rows = spark.sql(f"DESCRIBE TABLE EXTENDED {schema}.{name}").collect()
        where = next((r.data_type for r in rows if r.col_name == "Location"), "")
        gone = where.removeprefix("file:").rstrip("/") == folder.as_posix()
    except AnalysisException as exc:  # Delta cannot resolve it: DELTA_PATH_DOES_NOT_EXIST names the path
        gone = folder.as_posix() in str(exc)
    if gone:
        spark.sql(f"DROP TABLE IF EXISTS {schema}.{name}")


def files_read(df: DataFrame) -> int:
    """Run a query (``df.collect()``) and return how many data files its table scans opened:
    the sum of Spark's SQL metric ``numFiles`` ("number of files read") over the executed plan's
    leaves, i.e. after partition pruning and data skipping. Needs a classic (JVM) session; raises
    AttributeError on Spark Connect, whose DataFrames have no ``_jdf``."""
    df.collect()
    plan = df._jdf.queryExecution().executedPlan()
    if plan.getClass().getSimpleName() == "AdaptiveSparkPlanExec":
        plan = plan.executedPlan()
    total, leaves = 0, plan.collectLeaves().iterator()
    while leaves.hasNext():
        metrics = leaves.next().metrics()
        if metrics.contains("numFiles"):
            total += metrics.apply("numFiles").value()
    return total
