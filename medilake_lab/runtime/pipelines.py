"""Run a Spark Declarative Pipeline (lab 06) with the kit's Delta jars, offline.

``spark-pipelines`` (pyspark's ``pipelines`` extra) starts a local Spark Connect server and sends
it the graph that a project's ``spark-pipeline.yml`` and its Python/SQL files declare. Run as it
ships it cannot write Delta into the kit's warehouse: ``--jars`` does not reach the server's
class path, its in-memory catalog forgets the tables (a second run fails with
``DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION``) and a pipeline may not create schemas. So the kit
runs its own client (:mod:`medilake_lab.runtime.sdp_driver`) the way that launcher
(``org.apache.spark.deploy.SparkPipelines``: spark-submit with ``--remote local``) would, minus the
launcher's own two JVMs: Python with ``SPARK_REMOTE=local``, so that pyspark starts the server, a
JVM reading the run's properties file (``PYSPARK_SUBMIT_ARGS``). ``keep_server=True``
(:func:`run_pipeline`; lab 06's notebook) keeps that server running for the pipeline's next runs
in the same Python process, as Lakeflow's development mode keeps a pipeline's cluster
(:func:`start_server`); the kit's folders per pipeline:

=========================================  =========================================================
``<warehouse>/volumes/pipelines/<name>/``  what
=========================================  =========================================================
``conf/spark-defaults.conf``               the run's Spark properties (``--properties-file`` of the
                                           server's JVM): the notebooks' local
                                           class path (:func:`.jars.driver_class_path`) and class-data
                                           archive, Delta extension + catalog, ``delta`` as default
                                           format, the warehouse, a Hive catalog on the Derby below
``metastore/``                             the pipeline's private embedded Derby metastore (only its
                                           one server process opens it; re-runs find their tables)
``storage/``                               the spec's ``storage``: streaming checkpoints, at
                                           ``storage/_checkpoints/spark_catalog/<schema>/<table>/<flow>/<n>``
``event_log/``                             Delta table: every update's events (:mod:`.event_log`)
``logs/<UTC time>-<action>.log``           everything the run printed (tracebacks included)
``logs/<UTC time>-server.log``             a kept server's own output (:func:`start_server`)
``server.json``                            a kept server's process, port and token, while it runs
``run.lock``                               held by the run in progress (one at a time per pipeline)
=========================================  =========================================================

Tables land at ``<warehouse>/<schema>/<table>`` like every other lab's, so notebooks
(:func:`medilake_lab.runtime.spark.get_spark`) and the grader (delta-rs) read them by path.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from medilake_lab.errors import PipelineError, UsageError
from medilake_lab.runtime import class_archive, config, local_fs
from medilake_lab.runtime.jars import driver_class_path, require_java
from medilake_lab.runtime.spark import LOCAL_CONF, LOG_CONFIG

SPEC_NAME = "spark-pipeline.yml"
PIPELINES_DIR = "pipelines"
ACTIONS = ("run", "dry-run")
DRIVER = Path(__file__).with_name("sdp_driver.py")
SERVER = Path(__file__).with_name("sdp_server.py")
SERVER_READY = "MEDILAKE-SERVER-READY"  # = sdp_server.READY
SERVER_MARKER = "server.json"  # = sdp_server.MARKER: a kept server's pid, port and token, in the pipeline's home
TOKEN_ENV = "SPARK_CONNECT_AUTHENTICATE_TOKEN"  # pyspark's: the server requires it, the client sends it
#: how long a kept server may take to start (seconds)
SERVER_START_TIMEOUT = 300
#: a line the pipeline client logs: ``2026-12-02 07:28:48: Flow spark_catalog.bronze.x is RUNNING.``
EVENT = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d): (.*)$")
#: ``Flow 'spark_catalog.silver.x' has FAILED.`` (the name is quoted in failure events)
FLOW_FAILED = re.compile(r"Flow '?([^'\s]+?)'?\.? has FAILED|Failed to resolve flow: '([^']+)'")
#: the server's error for a failed flow, printed after its event: ``Error: [TABLE_OR_VIEW_NOT_FOUND] …``
CAUSE = "Error: "
ERROR_MARK = "MEDILAKE-ERROR: "  # = sdp_driver.ERROR_MARK (that file is run, not imported)
CONNECT_PORT = "spark.connect.grpc.binding.port"
PORT_ENV = "MEDILAKE_CONNECT_PORT"  # = sdp_driver.PORT_ENV
#: Extra JVM options for a run's processes only (appended to ``JAVA_TOOL_OPTIONS``). E.g. the C1 JIT
#: alone (``-XX:TieredStopAtLevel=1``) cut a scale-1 run of lab 06 from about 109 to 82 CPU s at the
#: same wall time, but made a scale-10 run 29 % slower (benchmarks/RESULTS.md, "CI time"); the test
#: suite sets it for the pipelines of the notebooks it runs.
JAVA_OPTIONS_ENV = "MEDILAKE_PIPELINE_JAVA_OPTIONS"


@dataclass(frozen=True)
class Pipeline:
    """A pipeline project and the kit's folders for it.

    Attributes
    ----------
    spec: the project's ``spark-pipeline.yml`` (absolute).
    name: the spec's ``name`` (one folder name).
    warehouse: warehouse root; tables land at ``<warehouse>/<schema>/<table>``.
    """

    spec: Path
    name: str
    warehouse: Path

    @property
    def home(self) -> Path:
        """``<warehouse>/volumes/pipelines/<name>``: the kit's folders for this pipeline."""
        return config.volume_dir(self.warehouse) / PIPELINES_DIR / self.name

    @property
    def conf_dir(self) -> Path:
        """Folder of the run's Spark properties file (:attr:`properties`)."""
        return self.home / "conf"

    @property
    def properties(self) -> Path:
        """The run's Spark properties file (``--properties-file`` of its server's JVM)."""
        return self.conf_dir / "spark-defaults.conf"

    @property
    def metastore(self) -> Path:
        """The pipeline's private Derby metastore folder (``metastore_db``, ``derby.log``)."""
        return self.home / "metastore"

    @property
    def storage(self) -> Path:
        """The run's ``storage`` root: streaming checkpoints under ``_checkpoints/``."""
        return self.home / "storage"

    @property
    def event_log(self) -> Path:
        """The pipeline's event-log Delta table (see :mod:`medilake_lab.runtime.event_log`)."""
        return self.home / "event_log"

    @property
    def logs(self) -> Path:
        """Folder of the runs' logs."""
        return self.home / "logs"

    def checkpoint(self, schema: str, table: str, flow: str | None = None) -> Path:
        """Folder of a streaming flow's checkpoints (default: the table's own flow, named like
        it); SDP keeps the checkpoint itself in a numbered subfolder (``0``, …) of it."""
        return self.storage / "_checkpoints" / "spark_catalog" / schema / table / (flow or table)


def load_pipeline(spec: str | os.PathLike | None = None, warehouse: str | os.PathLike | None = None) -> Pipeline:
    """Read a pipeline project's spec.

    Parameters
    ----------
    spec: the ``spark-pipeline.yml`` file or the folder holding it (default: the current folder).
    warehouse: warehouse root (default :func:`medilake_lab.runtime.config.warehouse_dir`).

    Raises
    ------
    UsageError: no spec there, it is not a YAML mapping, or its ``name`` is missing or is not a
        single folder name (the message names the file).
    """
    path = Path(spec or Path.cwd()).expanduser().resolve()
    if path.is_dir():
        path = path / SPEC_NAME
    if not path.is_file():
        raise UsageError(f"no pipeline spec at {path}: pass the {SPEC_NAME} file or its project folder")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {exc}") from None
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][\w.-]*", name):
        raise UsageError(f"{path}: `name` must be one folder name (letters, digits, _ . -), got {name!r}")
    return Pipeline(path, name, config.warehouse_dir(warehouse))


def spark_defaults(pipeline: Pipeline, class_path: Iterable[Path], port: int | None = None) -> dict[str, str]:
    """The ``spark-defaults.conf`` settings of a run: Spark property → value.

    The pipeline's server is the driver of a local Spark; these reach it where ``--jars`` and
    builder settings do not (the class path and static SQL settings are fixed at JVM start).
    ``class_path``: the server's driver class path (:func:`medilake_lab.runtime.jars.driver_class_path`:
    the kit's local file system jar, whose classes are then named here, and the Delta jars); it is
    the notebooks' class path, so the server maps the class-data archive too
    (:func:`.class_archive.java_options`, when there is one).
    ``port``: the Spark Connect server's port (default: Spark's fixed 15002, which a second
    pipeline running on the same machine, e.g. another warehouse's, would find taken).
    """
    derby, class_path = pipeline.metastore, list(class_path)
    return {
        **({CONNECT_PORT: str(port)} if port else {}),
        "spark.connect.grpc.binding.address": "127.0.0.1",  # this machine's clients only
        **LOCAL_CONF,  # the notebooks' local settings (Delta, memory, partitions, UTC, no UI), then:
        **local_fs.spark_conf(class_path),
        "spark.driver.extraClassPath": os.pathsep.join(map(str, class_path)),
        **({"spark.driver.defaultJavaOptions": archive} if (archive := class_archive.java_options()) else {}),
        "spark.sql.sources.default": "delta",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(pipeline.warehouse),
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={(derby / 'metastore_db').as_posix()};create=true",
        "spark.driver.extraJavaOptions":
            f"{config.collector_option(environment(pipeline, port))} "
            f"-Dderby.system.home={shlex.quote(derby.as_posix())} -Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}"
            .strip(),
    }


def write_conf_dir(pipeline: Pipeline, class_path: Iterable[Path], port: int | None = None) -> Path:
    """Write the run's properties file ``<home>/conf/spark-defaults.conf`` (:func:`spark_defaults`);
    returns its folder."""
    pipeline.conf_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"{key} {value}" for key, value in spark_defaults(pipeline, class_path, port).items()]
    pipeline.properties.write_text(
        "# written by medilake_lab for every run; edits are overwritten\n" + "\n".join(lines) + "\n")
    return pipeline.conf_dir


def command(pipeline: Pipeline, action: str = "run", full_refresh: bool = False) -> list[str]:
    """The argv of a run: this Python running the kit's client (:mod:`.sdp_driver`); its server is
    the one :func:`environment`'s ``SPARK_REMOTE`` names.

    Raises
    ------
    UsageError: ``action`` is not ``run`` or ``dry-run``, or a dry run asks for a full refresh.
    """
    if action not in ACTIONS:
        raise UsageError(f"pipeline action must be one of {', '.join(ACTIONS)}, got {action!r}")
    if full_refresh and action != "run":
        raise UsageError("--full-refresh needs `run` (a dry run writes nothing)")
    schemas = [f"{s}={(pipeline.warehouse / s).as_posix()}" for s in config.SCHEMAS]
    return [sys.executable, str(DRIVER), action,
            str(pipeline.spec), pipeline.storage.as_uri(), str(pipeline.event_log), str(int(full_refresh)),
            *schemas]


def free_port() -> int:
    """A TCP port free on this machine now (the OS picks it), for the run's Spark Connect server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


#: pyspark's state (Spark Connect, a gateway to a running JVM) that must not leak from this process into a run's
CONNECT_STATE = ("SPARK_CONF_DIR", "SPARK_REMOTE", "SPARK_LOCAL_REMOTE", "SPARK_CONNECT_MODE_ENABLED", TOKEN_ENV,
                 "PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "PYSPARK_REMOTE_INIT_CONF")


def environment(pipeline: Pipeline, port: int | None = None, remote: str = "local",
                token: str | None = None) -> dict[str, str]:
    """Environment of a run: this Python for the client, ``SPARK_REMOTE`` = ``remote`` (``local``:
    pyspark starts the server; ``sc://localhost:<port>``: a kept server, with its ``token``), the
    run's properties file for the server's JVM (``PYSPARK_SUBMIT_ARGS``; no ``SPARK_CONF_DIR``: a
    folder on its class path would keep it from mapping the class-data archive), pyspark as Spark home,
    ``MEDILAKE_WAREHOUSE`` = the pipeline's warehouse (for :func:`config.volume_dir` in definitions),
    ``MEDILAKE_CONNECT_PORT`` = the server's port, which the kit's client connects to, and
    ``$MEDILAKE_PIPELINE_JAVA_OPTIONS`` appended to ``JAVA_TOOL_OPTIONS`` (:data:`JAVA_OPTIONS_ENV`)."""
    java = " ".join(filter(None, (os.environ.get("JAVA_TOOL_OPTIONS", "").strip(),
                                  os.environ.get(JAVA_OPTIONS_ENV, "").strip())))
    inherited = {key: value for key, value in os.environ.items() if not key.startswith(CONNECT_STATE)}
    return {**inherited, **({PORT_ENV: str(port)} if port else {}), **({"JAVA_TOOL_OPTIONS": java} if java else {}),
            "SPARK_REMOTE": remote, **({TOKEN_ENV: token} if token else {}),
            "SPARK_HOME": str(config.spark_home()),
            # the server's JVM, which pyspark's client launches with spark-submit, reads the same file
            "PYSPARK_SUBMIT_ARGS": f"--properties-file {shlex.quote(str(pipeline.properties))} pyspark-shell",
            "PYSPARK_PYTHON": sys.executable,
            config.WAREHOUSE_ENV: str(pipeline.warehouse),  # definitions find the landing volume
            "PYSPARK_DRIVER_PYTHON": sys.executable, "PYTHONUNBUFFERED": "1"}


@dataclass
class RunResult:
    """What a run did.

    Attributes
    ----------
    log: the run's log file.
    seconds: wall-clock duration.
    events: the pipeline's event messages, in order (``Flow spark_catalog.bronze.x is RUNNING.``…).
    """

    log: Path
    seconds: float
    events: list[str] = field(default_factory=list)


@dataclass
class Server:
    """A pipeline's Spark Connect server kept running between its runs (:func:`start_server`).

    Attributes
    ----------
    home: the pipeline's folder (:attr:`Pipeline.home`), which identifies it.
    port: the server's TCP port on localhost.
    token: the authentication token its clients send.
    process: the host process (:mod:`.sdp_server`), whose standard input keeps it serving.
    log: the server's own output.
    """

    home: Path
    port: int
    token: str
    process: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        """Whether the host process still runs."""
        return self.process.poll() is None

    def stop(self, timeout: float = 60) -> None:
        """Close the host's standard input (it then stops the server) and wait ``timeout`` seconds
        before killing it; forget the server."""
        with contextlib.suppress(OSError, ValueError):
            if self.process.stdin:
                self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        (self.home / SERVER_MARKER).unlink(missing_ok=True)
        _SERVERS.pop(self.home, None)


#: servers kept by this process, by pipeline home
_SERVERS: dict[Path, Server] = {}


def start_server(pipeline: Pipeline) -> Server:
    """Start the pipeline's Spark Connect server and keep it running for its next runs from this
    process (:func:`run_pipeline` with ``keep_server=True``), like Lakeflow's development mode, which
    keeps a pipeline's cluster between updates. It is stopped by :func:`stop_servers`, when this
    process exits, or when this process dies (its host sees its standard input close). While it
    runs it holds the pipeline's Derby metastore, which one process at a time may open, so runs of
    the same pipeline from other processes use it too (``<home>/server.json``: :func:`running_server`).
    The spec's ``configuration`` reaches each run's session as runtime SQL settings (a static
    setting there takes effect only in a run's own server, as a run without ``keep_server`` starts).

    Raises
    ------
    PipelineError: the server did not start within :data:`SERVER_START_TIMEOUT` seconds (the
        message quotes its error and names its log).
    """
    port, token = free_port(), secrets.token_hex(16)
    write_conf_dir(pipeline, driver_class_path(), port)
    pipeline.logs.mkdir(parents=True, exist_ok=True)
    log = pipeline.logs / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-server.log"
    marker = pipeline.home / SERVER_MARKER
    process = subprocess.Popen([sys.executable, str(SERVER), str(marker)],
                               env=environment(pipeline, port, "local", token), cwd=pipeline.spec.parent, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
    answered, ready, error = threading.Event(), threading.Event(), [""]

    def copy_output() -> None:  # the server's output, to its log, for as long as it runs
        assert process.stdout is not None
        with log.open("w", encoding="utf-8") as out:
            for line in process.stdout:
                out.write(line)
                out.flush()
                if line.startswith(SERVER_READY):
                    ready.set()
                    answered.set()
                elif line.startswith(ERROR_MARK):
                    error[0] = line.removeprefix(ERROR_MARK).strip()
        answered.set()  # the process ended before it was ready

    threading.Thread(target=copy_output, daemon=True, name=f"medilake-pipeline-server-{port}").start()
    answered.wait(SERVER_START_TIMEOUT)
    if not ready.is_set():
        process.kill()
        process.wait()
        raise PipelineError(pipeline.name, "server start", log,
                            error[0] or f"the server did not start within {SERVER_START_TIMEOUT} s")
    server = _SERVERS[pipeline.home] = Server(pipeline.home, port, token, process, log)
    partial = marker.with_name(f"{SERVER_MARKER}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    partial.touch(mode=0o600)  # the token: this user's only, before it is written
    partial.write_text(json.dumps({"pid": process.pid, "port": port, "token": token,
                                   "warehouse": str(pipeline.warehouse.resolve())}), encoding="utf-8")
    partial.replace(marker)  # whole or not at all, for runs from other processes
    return server


def running_server(pipeline: Pipeline) -> tuple[int, str] | None:
    """``(port, token)`` of the pipeline's kept server when one serves: this process's, while its
    record (``<home>/server.json``) still names it (``reset``/``catchup`` move a lab's
    ``volumes/pipelines`` aside: a server left without its folder is stopped), or another process's
    recorded there for this warehouse, whose host process is alive; else None. POSIX only for
    another process's server."""
    server = _SERVERS.get(pipeline.home)
    if server is not None:
        if server.alive() and _record(pipeline) == {"pid": server.process.pid, "port": server.port,
                                                      "token": server.token,
                                                      "warehouse": str(pipeline.warehouse.resolve())}:
            return server.port, server.token
        server.stop()
    found = _record(pipeline)
    if not found or os.name != "posix" or found.get("warehouse") != str(pipeline.warehouse.resolve()):
        return None  # none, or a copied warehouse's record (the original's server)
    try:
        cmdline = Path(f"/proc/{int(found['pid'])}/cmdline")
        if cmdline.parent.exists() and SERVER.name not in cmdline.read_text(errors="replace"):
            return None  # the pid was reused by another program
        os.kill(int(found["pid"]), 0)  # alive (signal 0 only checks)
        socket.create_connection(("127.0.0.1", int(found["port"])), timeout=2).close()  # and serving
        return int(found["port"]), str(found["token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _record(pipeline: Pipeline) -> dict | None:
    """The kept server's record in ``<home>/server.json``, or None (none, or unreadable)."""
    try:
        found = json.loads((pipeline.home / SERVER_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def stop_servers() -> None:
    """Stop every server this process keeps (:func:`start_server`)."""
    for server in list(_SERVERS.values()):
        server.stop()


atexit.register(stop_servers)


def run_pipeline(pipeline: Pipeline, action: str = "run", full_refresh: bool = False,
                 echo: Callable[[str, str], None] | None = None, keep_server: bool = False) -> RunResult:
    """Run (or dry-run) a pipeline with the kit's Delta set-up; streams its events to ``echo``.

    Parameters
    ----------
    pipeline: from :func:`load_pipeline`.
    action: ``"run"`` (an update) or ``"dry-run"`` (resolve and validate the graph, write nothing).
    full_refresh: reset every streaming table and its checkpoints, then recompute everything.
    echo: called with ``(time, message)`` for each pipeline event (time as ``HH:MM:SS``).
    keep_server: start the pipeline's Spark Connect server once and keep it for the next runs
        (:func:`start_server`); a run uses a kept server whenever one is running, whatever this says.

    Raises
    ------
    SetupError: Java or the cached Delta jars are missing.
    UsageError: a bad ``action``/``full_refresh`` combination, the pipeline's metastore belongs to
        another warehouse (:func:`check_metastore`), or another run of the pipeline is in progress.
    PipelineError: the run failed, or a kept server did not start; the message names the failed
        flows, the error and the log file.
    """
    argv = command(pipeline, action, full_refresh)  # usage errors first
    check_metastore(pipeline)
    require_java()
    for folder in (pipeline.metastore, pipeline.storage, pipeline.logs):
        folder.mkdir(parents=True, exist_ok=True)
    with _one_run_at_a_time(pipeline):
        return _run(pipeline, argv, action, full_refresh, echo, keep_server)


@contextlib.contextmanager
def _one_run_at_a_time(pipeline: Pipeline) -> Iterator[None]:
    """Hold ``<home>/run.lock`` for the block (POSIX; elsewhere nothing).

    Raises
    ------
    UsageError: another run of the pipeline holds it (a notebook's and a terminal's at once).
    """
    if os.name != "posix":
        yield
        return
    import fcntl

    with (pipeline.home / "run.lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another run of pipeline {pipeline.name!r} is in progress (a notebook's or a "
                             f"terminal's, on {pipeline.warehouse}): wait for it to end, then run again") from None
        yield


def _run(pipeline: Pipeline, argv: list[str], action: str, full_refresh: bool,
         echo: Callable[[str, str], None] | None, keep_server: bool) -> RunResult:
    """:func:`run_pipeline`'s run, once its checks passed and it holds the pipeline's run lock."""
    kept = running_server(pipeline)
    if kept is None and keep_server:
        server = start_server(pipeline)
        kept = server.port, server.token
    if kept is not None:
        env = environment(pipeline, kept[0], f"sc://localhost:{kept[0]}", kept[1])
    else:
        port = free_port()
        write_conf_dir(pipeline, driver_class_path(), port)
        env = environment(pipeline, port)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = RunResult(pipeline.logs / f"{stamp}-{action}{'-full-refresh' if full_refresh else ''}.log", 0.0)
    error, causes, start = "", [], time.perf_counter()
    with result.log.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(argv, env=env, cwd=pipeline.spec.parent, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            line = line.rstrip("\n")
            if line.startswith(ERROR_MARK):
                error = line.removeprefix(ERROR_MARK)
            elif line.startswith(CAUSE):
                causes.append(line.removeprefix(CAUSE))
            elif match := EVENT.match(line):
                result.events.append(match.group(2))
                if echo:
                    echo(match.group(1)[-8:], match.group(2))
        status = proc.wait()
    result.seconds = time.perf_counter() - start
    if status:
        raise PipelineError(pipeline.name, action, result.log, failure_summary(result.events, error, status, causes))
    return result


def check_metastore(pipeline: Pipeline) -> None:
    """Make sure the pipeline's metastore describes this warehouse's tables; remember it if new.

    The metastore stores each table's absolute location. In a copied warehouse (``cp -a``) it
    still points at the original's tables, so a run there would write the original warehouse.
    The warehouse a metastore was created for is kept in ``<home>/metastore/WAREHOUSE``.

    Raises
    ------
    UsageError: the metastore was created for another warehouse (the message names both and what
        to do).
    """
    marker = pipeline.metastore / "WAREHOUSE"
    here = str(pipeline.warehouse.resolve())
    if marker.is_file():
        owner = marker.read_text(encoding="utf-8").strip()
        if owner != here:
            raise UsageError(
                f"the metastore of pipeline {pipeline.name!r} ({pipeline.metastore}) belongs to the warehouse "
                f"{owner}: it remembers the tables there, so a run would write that warehouse, not {here} "
                "(a copied warehouse?). Run the pipeline in a warehouse of its own, or move "
                f"{pipeline.home} and the pipeline's tables aside here and run it again from the start")
        return
    pipeline.metastore.mkdir(parents=True, exist_ok=True)
    marker.write_text(here + "\n", encoding="utf-8")


def failure_summary(events: list[str], error: str, status: int, causes: Iterable[str] = ()) -> str:
    """One paragraph on why a run failed: the flows that failed, the server's errors, the client's.

    ``events``: the run's event messages; ``error``: the client's ``MEDILAKE-ERROR`` line (may be
    empty); ``status``: the exit status; ``causes``: the server's ``Error:`` lines (first two
    distinct ones are kept; a flow that failed three times repeats its error).
    """
    flows = list(dict.fromkeys((m.group(1) or m.group(2)).removeprefix("spark_catalog.") for e in events
                               if (m := FLOW_FAILED.search(e))))
    parts = [f"failed flow(s): {', '.join(flows)}"] if flows else []
    parts += [cause.rstrip(".") for cause in list(dict.fromkeys(causes))[:2] if cause.rstrip(".") not in error]
    parts.append(error.rstrip(".") or f"the pipeline process exited with status {status}")
    return "; ".join(parts)
