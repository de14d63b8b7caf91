"""Keeps one pipeline's Spark Connect server running between runs (see :mod:`.pipelines`, ``keep_server``).

Not imported by the kit: :func:`medilake_lab.runtime.pipelines.start_server` runs this file with
``SPARK_REMOTE=local``, the run's properties file in ``PYSPARK_SUBMIT_ARGS``, the server's port in
``MEDILAKE_CONNECT_PORT`` and its authentication token in ``SPARK_CONNECT_AUTHENTICATE_TOKEN``.
pyspark then starts the local Spark Connect server exactly as it does for a single run (a JVM of
its own, listening on the properties file's port). Once a query answered through it, this process
prints :data:`READY` and serves until its standard input is closed (the kit stops it, or the
process that started it exits) or the server's JVM ends; then it stops the server and removes the
kit's record of it (the file named by its one argument, when that names this process). Ctrl-C in
the notebook that started it does not stop it. Each run's client (:mod:`.sdp_driver`) connects
with ``SPARK_REMOTE=sc://localhost:<port>``.

A failure prints its traceback and, last, ``MEDILAKE-ERROR: <class>: <message>``; the exit status
is then 1 (also when the JVM ended on its own).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
from pathlib import Path

from medilake_lab.runtime.sdp_driver import ERROR_MARK, run_as_script, use_kit_port

READY = "MEDILAKE-SERVER-READY"


def main(marker: Path) -> int:
    """Start the server, report :data:`READY`, serve (see the module docstring); returns the exit status."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Jupyter interrupts the kernel's whole process group
    use_kit_port()  # pyspark's own client would talk to Spark's fixed 15002, also on stop()
    spark = SparkSession.builder.getOrCreate()
    spark.sql("SELECT 1").collect()  # the port and token answer
    jvm = SparkContext._gateway.proc if SparkContext._gateway is not None else None  # type: ignore[attr-defined]
    print(READY, flush=True)
    while not (jvm is not None and jvm.poll() is not None):
        if select.select([sys.stdin], [], [], 2.0)[0] and not sys.stdin.readline():
            break  # EOF: the kit closed the pipe, or the process that started this one exited
    ended = None if jvm is None else jvm.poll()
    if ended is not None:
        print(f"{ERROR_MARK}the Spark Connect server's JVM ended (exit status {ended})", flush=True)
    with contextlib.suppress(Exception):  # a local remote session's stop() also stops its server
        spark.stop()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if json.loads(marker.read_text(encoding="utf-8")).get("pid") == os.getpid():
            marker.unlink()
    return 0 if ended is None else 1


if __name__ == "__main__":
    run_as_script(lambda: main(Path(sys.argv[1])))
