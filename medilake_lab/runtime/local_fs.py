"""Hadoop's local file system without a process per file, for the local Spark JVMs the kit starts.

pyspark ships no Hadoop native library, so Hadoop's ``RawLocalFileSystem`` sets a file's
permissions by starting a ``chmod`` process and reads a link's status by starting ``readlink``. A
Delta write starts two ``chmod`` per data file (the file and its ``.crc``) and a commit a few more
plus two ``readlink``: lab 01 alone started 423 processes, about 4–5 ms of the JVM's time each
(``strace -f -e trace=execve``; benchmarks/RESULTS.md, "Process spawns (Hadoop's local file
system) and one driver class path").

The three small classes under ``java/medilake/hadoop/`` do the same with ``java.nio`` (same
permission bits; a non-link's link status is its file status, as Hadoop's code returns it).
``medilake_lab setup`` compiles them once into a jar (:func:`build_jar`; needs ``javac``, which a
JDK has). Every driver JVM the kit starts then has the jar on its class path
(:func:`medilake_lab.runtime.jars.driver_class_path`), and the ones that run their tasks
themselves (local sessions, lab 06's pipeline servers) name its classes in :data:`SPARK_CONF`
(Hadoop's ``fs.file.impl`` for ``FileSystem``, ``fs.AbstractFileSystem.file.impl`` for
``FileContext``, which Delta's log store uses). Without the jar (no JDK, Windows) Spark runs
Hadoop's own classes, only slower.

The jar also holds the files of ``java/resources/``: an empty ``yarn-default.xml``, which shadows
Hadoop's (first on the class path). Hadoop reads that file into every ``Configuration`` once
MapReduce's classes are loaded (``JobConf``, which Spark's writes use): 527 of the 1,140 settings
of a local session's Hadoop configuration were YARN's, which local mode never reads, yet Spark
parses, copies and serializes them with every configuration it makes and every job it ships.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from medilake_lab.errors import SetupError
from medilake_lab.runtime import config

SOURCES = Path(__file__).with_name("java")
RELEASE = "17"  # javac --release: class files every Java Spark 4 runs on can load
#: Spark settings that make a JVM with the jar on its class path use its classes for ``file:`` paths
#: (Hadoop's keys, ``spark.hadoop.`` + key).
SPARK_CONF = {
    "spark.hadoop.fs.file.impl": "medilake.hadoop.NioLocalFileSystem",
    "spark.hadoop.fs.AbstractFileSystem.file.impl": "medilake.hadoop.NioLocalFs",
}


def _sources() -> list[Path]:
    return sorted(SOURCES.rglob("*.java"))


def _resources() -> list[Path]:
    """Files the jar holds as they are, at their path under ``java/resources/``."""
    return sorted(p for p in (SOURCES / "resources").rglob("*") if p.is_file())


def _hadoop_api() -> list[Path]:
    """pyspark's Hadoop API jar, which the classes are compiled against."""
    return sorted((config.spark_home() / "jars").glob("hadoop-client-api-*.jar"))


def jar_path() -> Path:
    """Where the jar is (or would be): ``<jar cache>/kit/medilake-local-fs-<digest>.jar``, the digest
    over the Java sources and resources, the Hadoop API jar they are compiled against and the target release,
    so that changed sources or another pyspark get a jar of their own. A subfolder, so that it
    is not taken for one of the cached Delta jars (:func:`medilake_lab.runtime.jars.cached_jars`)."""
    digest = hashlib.sha256(f"--release {RELEASE}".encode())
    for hadoop in _hadoop_api():  # the API compiled against: a new pyspark gets a jar of its own
        digest.update(f"\n{hadoop.name} {hadoop.stat().st_size}\n".encode())
    for source in [*_sources(), *_resources()]:
        digest.update(f"{source.relative_to(SOURCES).as_posix()}\n".encode() + source.read_bytes())
    return config.jars_dir() / "kit" / f"medilake-local-fs-{digest.hexdigest()[:12]}.jar"


def installed() -> Path | None:
    """The jar, when ``setup`` built it and this system has POSIX permissions; else None. Its
    classes are named (:func:`spark_conf`) only for JVMs that run their tasks themselves (local
    mode): a cluster's executors would not have it."""
    if os.name != "posix":
        return None
    path = jar_path()
    return path if path.is_file() else None


def spark_conf(class_path: Iterable[Path]) -> dict[str, str]:
    """:data:`SPARK_CONF` when the jar is on a JVM's ``class_path``, else ``{}`` (Hadoop's own)."""
    jar = installed()
    return dict(SPARK_CONF) if jar is not None and jar in class_path else {}


def _javac() -> str | None:
    """``javac`` of JAVA_HOME (the JDK Spark runs), else the one on PATH; None without one."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "javac").exists():
        return str(Path(home) / "bin" / "javac")
    return shutil.which("javac")


def build_jar(force: bool = False) -> Path:
    """Compile the sources against pyspark's Hadoop jar and write the jar unless it exists (about
    3 s); returns its path. The jar is written under a name of its own and renamed into place
    when complete; jars of earlier sources in the same folder are then removed.

    Raises
    ------
    SetupError: not a POSIX system, no ``javac`` (a Java runtime without the JDK), the compiler
        failed (the message quotes it) or the jar could not be written; each message says that
        Spark works without the jar.
    """
    if os.name != "posix":
        raise SetupError("the kit's local file system classes are for POSIX systems: Spark uses Hadoop's own here")
    path = jar_path()
    if path.is_file() and not force:
        return path
    javac = _javac()
    if javac is None:
        raise SetupError("no `javac` found (a Java runtime without the JDK): Spark uses Hadoop's own local file "
                         "system, which starts a process per file it writes. Install a JDK 17 to speed it up")
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial")
    with tempfile.TemporaryDirectory(prefix="medilake-local-fs-") as tmp:
        classes = Path(tmp)
        try:
            hadoop = os.pathsep.join(map(str, _hadoop_api()))
            out = subprocess.run([javac, "--release", RELEASE, "-nowarn", "-cp", hadoop, "-d", str(classes),
                                  *map(str, _sources())], capture_output=True, text=True, timeout=300)
            failed, log = out.returncode != 0, (out.stdout + out.stderr).strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            failed, log = True, str(exc)
        if failed:
            raise SetupError(f"could not compile the kit's local file system classes ({javac}); Spark works "
                             f"without them, only slower. The compiler said:\n{log[:2000]}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as jar:
                jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: medilake_lab setup\n\n")
                for found in sorted(classes.rglob("*.class")):
                    jar.write(found, found.relative_to(classes).as_posix())
                for found in _resources():
                    jar.write(found, found.relative_to(SOURCES / "resources").as_posix())
            partial.replace(path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            raise SetupError(f"could not write {path} ({exc}); Spark works without it, only slower") from None
    for old in path.parent.glob("medilake-local-fs-*.jar"):
        if old != path:
            with contextlib.suppress(OSError):
                old.unlink()
    return path
