"""Class-data sharing for the Spark driver JVMs the kit starts: Spark's classes mapped, not re-read.

Before a local session runs its first query, its JVM reads, parses and verifies thousands of
classes from pyspark's jars; it does it again in every new JVM (each ``medilake_lab run``, each
notebook kernel, each test). HotSpot's class-data sharing (CDS) can map those classes, already
parsed and verified, from an archive instead: ``medilake_lab setup`` writes a *dynamic archive*
once (:func:`build_archive`: a short Delta session run with ``-XX:ArchiveClassesAtExit``, JDK 13+),
and :func:`java_options` gives every local session :func:`medilake_lab.runtime.spark.get_spark`
starts ``-XX:SharedArchiveFile`` (Oracle, *Java SE 17 JVM guide*, "Class Data Sharing":
https://docs.oracle.com/en/java/javase/17/vm/class-data-sharing.html). A session's start and a
first 200,000-row Delta round took 25.9 s wall / 46.9 CPU s without it and 21.3 s / 39.8 CPU s
with it (2 cores, the G1 collector, ``benchmarks/bench_startup.py``; benchmarks/RESULTS.md, "Spark
start-up").

An archive holds only classes of the JVM's own class path and is only valid for the Java build
and class path it was made with. Every driver JVM the kit starts has one class path
(:func:`medilake_lab.runtime.jars.driver_class_path`: the kit's local file system jar, the Delta
jars, then Spark's), so the archive maps Delta's classes too. Its file name carries a digest of
the Java version and build, of the garbage collector and of that class path's jars (path, size,
modification time), so a new Java, collector, Delta or pyspark, or a moved jar cache, makes the kit
look for (and ``setup`` write) a new one. A JVM that still cannot use it (``SPARK_CONF_DIR`` set to
a folder with files, which changes the class path; another collector chosen in its environment)
starts normally without it, silently: the options turn the JVM's CDS log off. Without an archive
everything works as before, only slower to start.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from medilake_lab.errors import SetupError
from medilake_lab.runtime import config
from medilake_lab.runtime.jars import driver_class_path, java_version_text

#: Without these a JVM that cannot map the archive prints a warning (a red box in a notebook).
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"

#: Run in a child Python: a local session as get_spark starts it, dumping its loaded classes at exit,
#: after the kinds of work the labs do (NDJSON, Delta writes, MERGE, SQL, history, OPTIMIZE, streaming).
_BUILD = """
import sys
from pathlib import Path
from medilake_lab.runtime import spark as kit
dump, warehouse = sys.argv[1], Path(sys.argv[2])
kit.LOCAL_CONF["spark.driver.extraJavaOptions"] += " " + dump
spark = kit.get_spark(warehouse, app_name="medilake-class-archive", master="local[2]")
proc = spark.sparkContext._gateway.proc
(warehouse / "raw.json").write_text('{"k": 1, "v": "a"}\\n{"k": 2, "v": "b"}\\n')
raw = spark.read.json(str(warehouse / "raw.json"))
raw.write.format("delta").saveAsTable("bronze.t")
raw.createOrReplaceTempView("s")
spark.sql("MERGE INTO bronze.t USING s ON t.k = s.k WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *")
spark.sql("SELECT v, count(*) FROM bronze.t GROUP BY v").collect()
spark.sql("DESCRIBE HISTORY bronze.t").collect()
spark.sql("OPTIMIZE bronze.t ZORDER BY (k)").collect()
query = (spark.readStream.format("delta").table("bronze.t").writeStream.format("delta")
         .option("checkpointLocation", str(warehouse / "checkpoint")).trigger(availableNow=True)
         .toTable("silver.t"))
query.awaitTermination()
spark.stop()
proc.stdin.close()  # the JVM exits when its stdin closes, and writes the archive as it exits
sys.exit(proc.wait(timeout=300))
"""


def archive_path() -> Path | None:
    """Where this machine's archive is (or would be): ``<jar cache>/spark-classes-<digest>.jsa``,
    the digest over the Java version and build (``java -version``), the garbage collector
    (:func:`config.collector`: a JVM does not map an archive another collector wrote) and the
    driver class path's jars (:func:`.jars.driver_class_path`: path, size, modification time), then
    pyspark's; None without Java."""
    java = java_version_text()
    if java is None:
        return None
    # the version and builds, not the JVM's mode: -XX:TieredStopAtLevel=1 adds "emulated-client"
    build = [*java.splitlines()[:1], *re.findall(r"\(build ([^,)]+)", java)]
    jars = config.spark_home() / "jars"
    digest = hashlib.sha256(f"{build}\n{config.collector()}\n{jars}".encode())
    for jar in _driver_class_path():  # the JVM's class path, in order: where each jar is, too
        stat = jar.stat()
        digest.update(f"\n{jar} {stat.st_size} {stat.st_mtime_ns}".encode())
    for jar in sorted(jars.glob("*.jar")):  # (their folder is digested above)
        stat = jar.stat()
        digest.update(f"\n{jar.name} {stat.st_size} {stat.st_mtime_ns}".encode())
    return config.jars_dir() / f"spark-classes-{digest.hexdigest()[:12]}.jsa"


def _driver_class_path() -> list[Path]:
    """:func:`driver_class_path`, or ``[]`` before the Delta jars are fetched."""
    try:
        return driver_class_path()
    except SetupError:
        return []


def java_options() -> str:
    """JVM options that map the archive (``-XX:SharedArchiveFile=… -Xlog:cds=off …``), or ``""``
    when there is none for this Java, collector and class path (set-up not run since they changed)."""
    path = archive_path()
    if path is None or not path.is_file():
        return ""
    return f"-XX:SharedArchiveFile={shlex.quote(str(path))} {QUIET}"


def build_archive(force: bool = False) -> Path:
    """Write this machine's archive (about 45 s and 200 MB) unless it exists; returns its path.

    The session runs in a child process, in local mode on a temporary warehouse (never a cluster
    or a Spark Connect server from the environment); its JVM writes a file of its own, renamed
    into place only when complete, so two set-ups at once do not mix. Archives of an earlier Java
    or pyspark in the cache are then removed (as far as the system allows).

    Raises
    ------
    SetupError: no Java, or the session failed or took more than 15 minutes (the message quotes
        its last lines and says that Spark works without the archive).
    """
    path = archive_path()
    if path is None:
        raise SetupError("no Java found: the class-data archive needs it (run `medilake_lab doctor`)")
    if path.is_file():
        if not force:
            return path
        path.unlink()  # else the session would map it while dumping a new one
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial")
    env = {key: value for key, value in os.environ.items() if key not in ("SPARK_REMOTE", "SPARK_CONF_DIR")}
    dump = f"-XX:ArchiveClassesAtExit={shlex.quote(str(partial))} {QUIET}"
    try:
        with tempfile.TemporaryDirectory(prefix="medilake-classes-") as warehouse:
            out = subprocess.run([sys.executable, "-c", _BUILD, dump, warehouse], capture_output=True, text=True,
                                 timeout=900, env={**env, config.WAREHOUSE_ENV: warehouse})
        log = "\n".join((out.stdout + out.stderr).strip().splitlines()[-15:])
        failed = out.returncode or not partial.is_file()
    except subprocess.TimeoutExpired:
        log, failed = "(no answer for 15 minutes)", True
    if failed:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise SetupError(f"could not write the JVM's class-data archive {path} (Spark works without it, only "
                         f"slower to start; `medilake_lab setup` tries again). Its last lines:\n{log}")
    partial.replace(path)
    for old in path.parent.glob("spark-classes-*.jsa"):
        if old != path:
            with contextlib.suppress(OSError):
                old.unlink()
    return path
