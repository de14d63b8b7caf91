"""Class-data sharing for the Spark driver JVMs the kit starts: Spark's classes mapped, not re-read.

Before a local session runs its first query, its JVM reads, parses and verifies thousands of
classes from pyspark's jars; it does it again in every new JVM (each ``medilake_lab run``, each
notebook kernel, each test). HotSpot's class-data sharing (CDS) can map those classes, already
parsed and verified, from an archive instead: ``medilake_lab setup`` writes a *dynamic archive*
once (:func:`build_archive`: a short Delta session run with ``-XX:ArchiveClassesAtExit``, JDK 13+),
and :func:`java_options` gives every local session :func:`medilake_lab.runtime.spark.get_spark`
starts ``-XX:SharedArchiveFile`` (Oracle, *Java SE 17 JVM guide*, "Class Data Sharing":
https://docs.oracle.com/en/java/javase/17/vm/class-data-sharing.html). A cold session's start and
first Delta round measured 20.2 s wall / 36.5 CPU s without it and 13.8 s / 25.8 CPU s with it
(2 cores, benchmarks/RESULTS.md, "Spark start-up").

An archive holds only classes of the JVM's own class path (Spark's jars; the Delta jars arrive later
through ``spark.jars``) and is only valid for the Java build and class path it was made with. Its
file name carries a digest of the ``java -version`` text and the pyspark version, so a new Java or
pyspark makes the kit look for (and ``setup`` write) a new one; a JVM that still cannot use it (e.g.
``SPARK_CONF_DIR`` set to a folder with files, which changes the class path) starts normally
without it, silently: the options turn the JVM's CDS log off.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from medilake_lab.errors import SetupError
from medilake_lab.runtime import config
from medilake_lab.runtime.jars import java_version_text

#: Without these a JVM that cannot map the archive prints a warning (a red box in a notebook).
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"

#: Run in a child Python: a local session as get_spark starts it, dumping its loaded classes at exit,
#: after the kinds of work the labs do (NDJSON, Delta writes, MERGE, SQL, history, OPTIMIZE, streaming).
_BUILD = """
import sys
from pathlib import Path
from medilake_lab.runtime import spark as kit
archive, warehouse = sys.argv[1], Path(sys.argv[2])
kit.LOCAL_CONF["spark.driver.extraJavaOptions"] += f" -XX:ArchiveClassesAtExit={archive} {sys.argv[3]}"
spark = kit.get_spark(warehouse, app_name="medilake-class-archive")
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
    the digest over the ``java -version`` text and the pyspark version; None without Java."""
    import pyspark

    java = java_version_text()
    if java is None:
        return None
    digest = hashlib.sha256(f"{java}\n{pyspark.__version__}".encode()).hexdigest()[:12]
    return config.jars_dir() / f"spark-classes-{digest}.jsa"


def java_options() -> str:
    """JVM options that map the archive (``-XX:SharedArchiveFile=… -Xlog:cds=off …``), or ``""``
    when there is none for this Java and pyspark (set-up not run since they changed)."""
    path = archive_path()
    if path is None or not path.is_file():
        return ""
    return f"-XX:SharedArchiveFile={shlex.quote(str(path))} {QUIET}"


def build_archive(force: bool = False) -> Path:
    """Write this machine's archive (about 30 s and 200 MB) unless it exists; returns its path.
    Archives of an earlier Java or pyspark in the cache are removed. The session runs in a child
    process on a temporary warehouse; the file appears only when complete.

    Raises
    ------
    SetupError: no Java, or the session failed (the message quotes its last lines).
    """
    path = archive_path()
    if path is None:
        raise SetupError("no Java found: the class-data archive needs it (run `medilake_lab doctor`)")
    if path.is_file():
        if not force:
            return path
        path.unlink()  # else the session would map it while dumping a new one
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with tempfile.TemporaryDirectory(prefix="medilake-classes-") as warehouse:
        out = subprocess.run([sys.executable, "-c", _BUILD, str(partial), warehouse, QUIET],
                             capture_output=True, text=True, timeout=900,
                             env={**os.environ, "MEDILAKE_WAREHOUSE": warehouse})
    if out.returncode or not partial.is_file():
        partial.unlink(missing_ok=True)
        log = "\n".join((out.stdout + out.stderr).strip().splitlines()[-15:])
        raise SetupError(f"could not write the JVM's class-data archive {path}; its last lines:\n{log}")
    for old in path.parent.glob("spark-classes-*.jsa"):
        old.unlink()
    partial.replace(path)
    return path
