"""A Spark standalone cluster on this machine, for trying the labs on a cluster (tests, benchmarks).

:func:`local_cluster` starts a Master and ``workers`` Workers with pyspark's own launcher
(``<pyspark>/bin/spark-class org.apache.spark.deploy.master.Master`` / ``…worker.Worker
spark://…``, as in Spark's "Starting a Cluster Manually"), every one bound to 127.0.0.1 on free
ports, waits until every worker has registered with the master (the master web UI's ``/json``),
and stops them all when the block ends, also when it fails::

    with local_cluster(tmp_path) as cluster:
        os.environ.update(cluster.env())  # MEDILAKE_SPARK_MASTER=spark://127.0.0.1:<port>
        spark = get_spark(warehouse)       # its tasks run in the workers' executors

Each daemon runs in its own process group, and a worker's executors are its children, so
stopping the group stops the executors too. Logs go to ``<folder>/logs/{master,worker-N}.log``,
executor logs to ``<folder>/work/worker-N/<app id>/<executor id>/stderr`` (Spark's layout).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medilake_lab.errors import SetupError
from medilake_lab.runtime import config
from medilake_lab.runtime.jars import require_java

HOST = "127.0.0.1"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
#: heap of the master and worker daemons themselves (Spark's default, 1g, is for real machines)
DAEMON_MEMORY = "256m"


@dataclass
class LocalCluster:
    """A running localhost standalone cluster (made by :func:`local_cluster`).

    ``master_url`` is ``spark://127.0.0.1:<port>``, ``ui_url`` the master web UI
    ``http://127.0.0.1:<port>``; ``folder`` holds ``logs/`` and the workers' ``work/`` directories;
    ``daemons`` maps ``"master"``, ``"worker-1"``… to their processes (a worker's executors are
    its children).
    """

    master_url: str
    ui_url: str
    folder: Path
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def pids(self) -> list[int]:
        """Process ids of the master and worker daemons (for sampling their process trees)."""
        return [proc.pid for proc in self.daemons.values()]

    def env(self) -> dict[str, str]:
        """Environment that points the kit's sessions at this cluster: :data:`config.SPARK_MASTER_ENV`
        and ``SPARK_LOCAL_IP`` (the driver binds to 127.0.0.1 too, where the executors reach it)."""
        return {config.SPARK_MASTER_ENV: self.master_url, "SPARK_LOCAL_IP": HOST}

    def master_state(self) -> dict[str, Any]:
        """The master's ``/json`` state: ``workers`` (each with ``id``, ``state``, ``cores``,
        ``webuiaddress``…), ``activeapps`` and ``completedapps`` (``id``, ``name``, ``cores``…)."""
        return _get_json(f"{self.ui_url}/json/")

    def worker_states(self) -> list[dict[str, Any]]:
        """Each alive worker's own ``/json`` state: ``id``, ``cores``, ``executors`` and
        ``finishedexecutors`` (each with ``id``, ``appid``, ``memory`` in MiB)."""
        return [_get_json(f"{w['webuiaddress']}/json/") for w in self.master_state()["workers"]
                if w["state"] == "ALIVE"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_cluster(folder: str | os.PathLike, workers: int = 2, cores: int = 1, memory: str = "1g",
                  timeout: float = 120.0) -> Iterator[LocalCluster]:
    """Start a standalone Master and ``workers`` Workers on 127.0.0.1; stop them all on exit.

    Parameters
    ----------
    folder: where the daemons' logs (``logs/``) and the workers' directories (``work/``) go.
    workers: number of Worker daemons.
    cores: CPU cores each worker offers (its executor takes them all).
    memory: memory each worker offers, a JVM size such as ``"1g"``; it must hold one executor
        (``spark.executor.memory``, Spark's default 1g).
    timeout: seconds to wait for the master to answer and every worker to register.

    Raises
    ------
    SetupError: Java < 17 or missing; a daemon exited or the workers did not all register
        within ``timeout`` (the message names the log file and quotes its last lines).
    """
    require_java()
    root = Path(folder).resolve()
    (root / "logs").mkdir(parents=True, exist_ok=True)
    ports = {"master": free_port(), "master_ui": free_port()}
    cluster = LocalCluster(f"spark://{HOST}:{ports['master']}", f"http://{HOST}:{ports['master_ui']}", root)
    with ExitStack() as stack:
        start = _starter(stack, cluster)
        start("master", [MASTER_CLASS, "--host", HOST, "--port", str(ports["master"]),
                         "--webui-port", str(ports["master_ui"])])
        for n in range(1, workers + 1):
            work = root / "work" / f"worker-{n}"
            work.mkdir(parents=True, exist_ok=True)
            start(f"worker-{n}", [WORKER_CLASS, "--host", HOST, "--port", str(free_port()),
                                  "--webui-port", str(free_port()), "--cores", str(cores),
                                  "--memory", memory, "--work-dir", str(work), cluster.master_url])
        _wait_for_workers(cluster, workers, timeout)
        yield cluster


def _starter(stack: ExitStack, cluster: LocalCluster) -> Callable[[str, list[str]], None]:
    """A function ``start(name, args)`` that launches ``spark-class args`` in a new process group
    logging to ``logs/<name>.log`` and registers its stop (the whole group) on ``stack``."""
    env = {**os.environ, "SPARK_HOME": str(config.spark_home()), "SPARK_LOCAL_IP": HOST,
           "SPARK_DAEMON_MEMORY": DAEMON_MEMORY}
    env.pop("SPARK_REMOTE", None)
    launcher = str(config.spark_home() / "bin" / "spark-class")

    def start(name: str, args: list[str]) -> None:
        log = stack.enter_context((cluster.folder / "logs" / f"{name}.log").open("wb"))
        proc = subprocess.Popen([launcher, *args], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        cluster.daemons[name] = proc
        stack.callback(_stop_group, proc)

    return start


def _stop_group(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """Stop a daemon's process group (the daemon and the executors it launched): SIGTERM, then
    SIGKILL after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(grace)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.poll()


def _wait_for_workers(cluster: LocalCluster, workers: int, timeout: float) -> None:
    """Poll the master's ``/json`` until ``workers`` workers are ALIVE.

    Raises
    ------
    SetupError: a daemon exited, or the time ran out; names the log file with its last lines.
    """
    deadline, alive = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        for name, proc in cluster.daemons.items():
            if proc.poll() is not None:
                raise SetupError(f"the standalone {name} stopped while starting: {_tail(cluster, name)}")
        try:
            state = cluster.master_state()
            alive = sum(w["state"] == "ALIVE" for w in state["workers"])
            if alive >= workers:
                return
        except (OSError, ValueError):  # the master's web UI is not (fully) up yet
            pass
        time.sleep(0.5)
    raise SetupError(f"the standalone cluster at {cluster.master_url} has {alive} of {workers} workers "
                     f"registered after {timeout:.0f} s; master: {_tail(cluster, 'master')}")


def _tail(cluster: LocalCluster, name: str, lines: int = 8) -> str:
    log = cluster.folder / "logs" / f"{name}.log"
    text = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else ["(no log)"]
    return f"{log}, last lines:\n  " + "\n  ".join(text)


def _get_json(url: str) -> dict[str, Any]:
    """GET ``url`` and parse its JSON body (5 s timeout).

    Raises
    ------
    OSError: nothing answers at ``url``.
    ValueError: the answer is not JSON. A web UI that is still starting answers ``/json/`` with
        its HTML page for a moment, before its JSON handler is attached (seen in CI on Spark 4.2).
    """
    with urllib.request.urlopen(url, timeout=5) as response:
        kind = response.headers.get_content_type()
        if not kind.endswith("json"):
            raise ValueError(f"{url} answered {kind}, not JSON")
        return json.loads(response.read())
