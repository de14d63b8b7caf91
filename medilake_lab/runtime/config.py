"""Where things live: project root, bundled data, warehouse, jar cache, learner progress.

Every path the kit uses is resolved here, from (highest priority first) an explicit argument,
an environment variable, then a default inside the project folder:

=====================  ===========================  ====================================
what                   environment variable         default
=====================  ===========================  ====================================
project root           ``MEDILAKE_HOME``            the repo this package sits in, else cwd
raw data folder        ``MEDILAKE_DATA``            ``<root>/data``
warehouse root         ``MEDILAKE_WAREHOUSE``       ``<root>/.medilake/warehouse``
Delta jar cache        ``MEDILAKE_JARS``            ``<root>/.medilake/jars``
learner state          ``MEDILAKE_STATE``           ``<root>/.medilake``
=====================  ===========================  ====================================

Lab 05's landing volume lives in the warehouse (it follows ``MEDILAKE_WAREHOUSE``):

=====================  ====================================================================
what                   path
=====================  ====================================================================
landing volume         ``<warehouse>/volumes``: a data folder, grown by ``medilake_lab deliver``
lab 06's volume        ``<warehouse>/volumes/lab06``: the same, for lab 06 (``deliver --volume lab06``)
stream checkpoints     ``<warehouse>/volumes/checkpoints/<query>``, one per streaming query
=====================  ====================================================================

Settings of the notebook runs (``run``, ``catchup``), read when used:

=========================  ==========  ===================================================
environment variable       default     what
=========================  ==========  ===================================================
``MEDILAKE_DRIVER_MEMORY``  ``2g``      Spark driver memory of a local session (a JVM size)
``MEDILAKE_KERNEL_TIMEOUT`` ``180``     seconds a notebook's Jupyter kernel may take to start
``MEDILAKE_SPARK_MASTER``  ``local[2]``  Spark master of the sessions ``get_spark`` starts, e.g.
                                       a standalone cluster's ``spark://host:7077``
=========================  ==========  ===================================================

(A Spark Connect server is chosen with Spark's own ``SPARK_REMOTE``, e.g. ``sc://host:15002``.)
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from pathlib import Path

from medilake_lab.errors import SetupError, UsageError

SCHEMAS: tuple[str, ...] = ("bronze", "silver", "gold")
DEFAULT_SEED = 42
DEFAULT_SCALE = 1.0

#: Delta Lake jar for pyspark 4.2 (artifact suffix = Spark major.minor, Scala 2.13).
DELTA_VERSION = "4.4.0"
DELTA_PACKAGE = f"io.delta:delta-spark_4.2_2.13:{DELTA_VERSION}"


def spark_home() -> Path:
    """pyspark's folder (its ``bin/spark-class`` and ``jars/``), found without importing pyspark.

    Raises
    ------
    SetupError: pyspark is not installed in this Python.
    """
    found = importlib.util.find_spec("pyspark")
    if found is None or found.origin is None:
        raise SetupError("pyspark is not installed in this Python: run `make setup`")
    return Path(found.origin).resolve().parent


def project_root() -> Path:
    """The project folder: ``$MEDILAKE_HOME``, else the repo holding this package, else cwd."""
    env = os.environ.get("MEDILAKE_HOME")
    if env:
        return Path(env).expanduser().resolve()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").exists() and (repo / "medilake_lab").is_dir():
        return repo
    return Path.cwd()


WAREHOUSE_ENV = "MEDILAKE_WAREHOUSE"
DATA_ENV = "MEDILAKE_DATA"


def _path(env_var: str, default: Path, override: str | os.PathLike | None) -> Path:
    if override is not None:
        return Path(override).expanduser().resolve()
    env = os.environ.get(env_var)
    return Path(env).expanduser().resolve() if env else default


def state_dir(override: str | os.PathLike | None = None) -> Path:
    """Folder for learner state (progress file, default warehouse and jar cache)."""
    return _path("MEDILAKE_STATE", project_root() / ".medilake", override)


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """Raw-data folder holding ``landing/<feed>/<feed>_<batch>.json.gz`` and the manifest."""
    return _path(DATA_ENV, project_root() / "data", override)


def warehouse_dir(override: str | os.PathLike | None = None) -> Path:
    """Warehouse root: Delta tables live at ``<warehouse>/<schema>/<table>``."""
    return _path(WAREHOUSE_ENV, state_dir() / "warehouse", override)


def origin(env_var: str, option: str, override: str | os.PathLike | None = None) -> str:
    """Where a path setting came from: ``option`` (e.g. "--warehouse"), ``env_var``, or "default"."""
    if override is not None:
        return option
    return env_var if os.environ.get(env_var) else "default"


def jars_dir(override: str | os.PathLike | None = None) -> Path:
    """Local cache of the Delta jars, filled once by ``medilake_lab setup``. A machine-wide
    cache beside the project, not learner state: a different ``MEDILAKE_STATE`` shares it."""
    return _path("MEDILAKE_JARS", project_root() / ".medilake" / "jars", override)


def table_path(schema: str, table: str, warehouse: str | os.PathLike | None = None) -> Path:
    """Directory of a Delta table, e.g. ``table_path("bronze", "patients")``."""
    return warehouse_dir(warehouse) / schema / table


VOLUME_DIR = "volumes"
CHECKPOINTS_DIR = "checkpoints"


def volume_dir(warehouse: str | os.PathLike | None = None, name: str | None = None) -> Path:
    """A landing volume: a data folder (``landing/<feed>/...`` and the manifest, as :func:`data_dir`)
    that ``medilake_lab deliver`` grows batch by batch; the bundled data folder is never written to.

    Parameters
    ----------
    warehouse: warehouse root (default :func:`warehouse_dir`).
    name: ``None`` for lab 05's volume, ``<warehouse>/volumes``; else a volume of its own,
        ``<warehouse>/volumes/<name>`` (lab 06 lands in ``volumes/lab06``, so its deliveries never
        change what lab 05's streams and checks read).

    Raises
    ------
    ValueError: ``name`` is empty or not a single folder name.
    """
    root = warehouse_dir(warehouse) / VOLUME_DIR
    if name is None:
        return root
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ValueError(f"volume name must be one folder name under {root}, got {name!r}")
    return root / name


def checkpoint_dir(query: str, warehouse: str | os.PathLike | None = None) -> Path:
    """Checkpoint folder of one streaming query, ``<warehouse>/volumes/checkpoints/<query>``
    (e.g. ``checkpoint_dir("bronze_encounters")``); one per query, never shared.

    Raises
    ------
    ValueError: ``query`` is empty or not a single folder name (holds a path separator or is
        ``.``/``..``).
    """
    if not query or query in (".", "..") or "/" in query or os.sep in query:
        raise ValueError(f"checkpoint query name must be one folder name, got {query!r}")
    return volume_dir(warehouse) / CHECKPOINTS_DIR / query


DRIVER_MEMORY_ENV = "MEDILAKE_DRIVER_MEMORY"
KERNEL_TIMEOUT_ENV = "MEDILAKE_KERNEL_TIMEOUT"
#: seconds; a busy 2-core laptop can take over a minute to start a kernel (Jupyter's default: 60)
DEFAULT_KERNEL_TIMEOUT = 180


SPARK_MASTER_ENV = "MEDILAKE_SPARK_MASTER"
DEFAULT_SPARK_MASTER = "local[2]"


def is_local(master: str) -> bool:
    """Whether a Spark master URL runs the tasks in the driver's own JVM: ``local``, ``local[N]``,
    ``local[*]``, ``local[N,F]`` (not ``local-cluster[…]``, whose executors are JVMs of their own)."""
    return re.fullmatch(r"local(\[[^\]]*\])?", master) is not None


def spark_master() -> str:
    """Spark master URL of the sessions :func:`medilake_lab.runtime.spark.get_spark` starts
    (``$MEDILAKE_SPARK_MASTER``, default :data:`DEFAULT_SPARK_MASTER`): ``local[N]`` runs Spark in
    the notebook's own JVM; ``spark://host:port`` runs its tasks on a standalone cluster's workers
    (each needs Java and the same Spark version, and must reach the warehouse path).

    Raises
    ------
    UsageError: the value is a Spark Connect address (``sc://…``), which belongs in ``SPARK_REMOTE``.
    """
    master = os.environ.get(SPARK_MASTER_ENV, "").strip() or DEFAULT_SPARK_MASTER
    if master.startswith("sc://"):
        raise UsageError(f"{SPARK_MASTER_ENV}={master!r} is a Spark Connect address: set "
                         f"SPARK_REMOTE={master} instead (the server then needs Delta configured), "
                         f"and unset {SPARK_MASTER_ENV}")
    return master


def driver_memory() -> str:
    """Spark driver memory of local sessions, e.g. ``"2g"`` (``$MEDILAKE_DRIVER_MEMORY``)."""
    return os.environ.get(DRIVER_MEMORY_ENV) or "2g"


#: The garbage collector of the Spark JVMs the kit starts (notebook sessions, pipeline servers): the
#: throughput (Parallel) collector rather than the JVM's default G1, whose concurrent threads compete
#: with the work for a 2-core laptop's cores. Labs 01–04 in one kernel (``catchup 05``) took 438 CPU s
#: and 260 s wall with it, 496 and 288 with G1 (means of three and two runs; benchmarks/RESULTS.md,
#: "Garbage collector").
COLLECTOR = "-XX:+UseParallelGC"
#: The options that choose a collector (HotSpot, JDK 17+); two on one JVM stop it from starting.
_COLLECTORS = re.compile(r"-XX:\+Use(?:Serial|Parallel|G1|Z|Shenandoah|Epsilon)GC\b")
#: Where a JVM reads options from the environment (the ``java`` launcher: all three).
_JAVA_ENV = ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS")


def collector(environ: Mapping[str, str] | None = None) -> str:
    """The collector option the Spark JVMs the kit starts run with: the last one that
    ``JAVA_TOOL_OPTIONS``, ``JDK_JAVA_OPTIONS`` or ``_JAVA_OPTIONS`` in ``environ`` choose (default:
    this process's environment, read now), else :data:`COLLECTOR`."""
    return (_chosen_collectors(environ) or [COLLECTOR])[-1]


def collector_option(environ: Mapping[str, str] | None = None) -> str:
    """What the kit adds to a Spark JVM's command line: :data:`COLLECTOR`, or ``""`` when ``environ``
    (default: this process's environment, read now) already chooses a collector: the learner's
    choice stays."""
    return "" if _chosen_collectors(environ) else COLLECTOR


def _chosen_collectors(environ: Mapping[str, str] | None) -> list[str]:
    environ = os.environ if environ is None else environ
    return [option for name in _JAVA_ENV for option in _COLLECTORS.findall(environ.get(name, ""))]


def kernel_timeout() -> int:
    """Seconds a notebook's Jupyter kernel may take to start (``$MEDILAKE_KERNEL_TIMEOUT``,
    default :data:`DEFAULT_KERNEL_TIMEOUT`).

    Raises
    ------
    UsageError: the variable is not a whole number of seconds ≥ 1.
    """
    text = os.environ.get(KERNEL_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_KERNEL_TIMEOUT
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{KERNEL_TIMEOUT_ENV}={text!r} is not a whole number of seconds ≥ 1 "
                         f"(e.g. {KERNEL_TIMEOUT_ENV}=300; unset: {DEFAULT_KERNEL_TIMEOUT})")
    return int(text)
