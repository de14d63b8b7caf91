"""Keeps one pipeline's Spark Connect server running between runs (see :mod:`.pipelines`, ``keep_server``).

Not imported by the kit: :func:`medilake_lab.runtime.pipelines.start_server` runs this file with
``SPARK_REMOTE=local``, the run's properties file in ``PYSPARK_SUBMIT_ARGS`` and the server's
authentication token in ``SPARK_CONNECT_AUTHENTICATE_TOKEN``. pyspark then starts the local Spark
Connect server exactly as it does for a single run (a JVM of its own, the port of the properties
file); this process prints :data:`READY` and waits until its standard input is closed (the kit
stops it, or the process that started it exits), then stops the server and removes the kit's
record of it (``server.json`` in its working folder, the pipeline's). Each run's client
(:mod:`.sdp_driver`) connects to it with ``SPARK_REMOTE=sc://localhost:<port>``.

A failure to start prints its traceback and, last, ``MEDILAKE-ERROR: <class>: <message>``; the
exit status is then 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from pathlib import Path

READY = "MEDILAKE-SERVER-READY"
MARKER = "server.json"  # = pipelines.SERVER_MARKER
ERROR_MARK = "MEDILAKE-ERROR: "


def main() -> int:
    """Start the server, report :data:`READY`, serve until stdin closes; returns the exit status."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    print(READY, flush=True)
    sys.stdin.read()  # until EOF: the kit closed the pipe or exited
    spark.stop()  # a local remote session's stop() also stops its server
    marker = Path(MARKER)  # the kit's record of this server, in the pipeline's folder (the cwd)
    with contextlib.suppress(OSError, ValueError):
        if json.loads(marker.read_text(encoding="utf-8")).get("pid") == os.getpid():
            marker.unlink()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001 - the kit shows one line; the traceback goes to the log
        traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"{ERROR_MARK}{type(exc).__name__}: {first}", file=sys.stderr, flush=True)
        sys.exit(1)
