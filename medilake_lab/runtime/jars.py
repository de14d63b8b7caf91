"""One-time set-up: check Java, resolve the Delta jars from Maven Central into a local cache.

After ``medilake_lab setup`` the kit needs no network: :func:`medilake_lab.runtime.spark.get_spark`
puts the cached jars on the driver's class path (:func:`driver_class_path`) and serves them to a
cluster's executors (``spark.jars``), instead of asking Ivy again.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from medilake_lab.errors import SetupError
from medilake_lab.runtime import config, local_fs

MIN_JAVA = 17
JAVA_HELP = (
    "Spark 4 needs Java {min}+ (found: {found}). Install it, e.g. "
    "`sudo apt-get install openjdk-17-jdk-headless` (Debian/Ubuntu), "
    "`brew install openjdk@17` (macOS) or `conda install -c conda-forge openjdk=17`, "
    "then set JAVA_HOME or put `java` on PATH."
)
JARS_HELP = (
    "Delta Lake jars not found in {path}. Run `make setup` (or `medilake_lab setup`) once "
    "with network access to Maven Central; afterwards everything works offline."
)


def java_version_text() -> str | None:
    """What ``java -version`` prints (the ``java`` of JAVA_HOME, else of PATH: the one Spark's
    launcher runs) but the notes on options from the environment (``Picked up JAVA_TOOL_OPTIONS:
    …``), or None when there is none. Read once per process and ``java`` binary."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        return None
    return _version_text(str(Path(java).resolve()))


@functools.cache
def _version_text(java: str) -> str | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return "".join(line for line in (out.stderr + out.stdout).splitlines(keepends=True)
                   if not line.startswith(("Picked up ", "NOTE: Picked up ")))


def java_version() -> int | None:
    """Major version of the ``java`` on PATH/JAVA_HOME, or None when there is none."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', java_version_text() or "")
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def require_java() -> int:
    """Return the Java major version.

    Raises
    ------
    SetupError: no Java, or older than 17 (message says how to install it).
    """
    found = java_version()
    if found is None or found < MIN_JAVA:
        raise SetupError(JAVA_HELP.format(min=MIN_JAVA, found=found or "none"))
    return found


def cached_jars(jars: str | Path | None = None) -> list[Path]:
    """The jar files in the cache (empty when set-up has not run)."""
    folder = config.jars_dir(jars)
    return sorted(folder.glob("*.jar")) if folder.is_dir() else []


def require_jars(jars: str | Path | None = None) -> list[Path]:
    """Cached Delta jars, or SetupError naming the command that fetches them."""
    found = cached_jars(jars)
    if not any(p.name.startswith("io.delta_delta-spark") for p in found):
        raise SetupError(JARS_HELP.format(path=config.jars_dir(jars)))
    return found


def driver_class_path() -> list[Path]:
    """The driver class path (``spark.driver.extraClassPath``) of every Spark driver JVM the kit
    starts: notebook sessions (local or on a cluster), lab 06's pipeline servers and the one that
    writes the class-data archive. The kit's local file system jar when set-up built it
    (:mod:`medilake_lab.runtime.local_fs`), then the cached Delta jars; Spark's own jars follow.
    One class path for all, so that one archive maps Spark's and Delta's classes in each
    (:mod:`medilake_lab.runtime.class_archive`).

    Raises
    ------
    SetupError: the Delta jars were never fetched (:func:`require_jars`).
    """
    fs_jar = local_fs.installed()
    return [*([fs_jar] if fs_jar else []), *require_jars()]


def _artifact(jar_name: str) -> str:
    """``org.apache.parquet_parquet-column-1.16.0.jar`` → ``parquet-column``."""
    base = re.sub(r"^[\w]+(?:\.[\w]+)+_", "", jar_name)  # Ivy prefixes the group id
    return re.sub(r"-\d[\w.\-]*\.jar$", "", base)


#: Run in a child Python: start (and stop) a session that makes Spark's Ivy resolve a package.
_IVY_RESOLVE = """
import sys
from pyspark.sql import SparkSession
(SparkSession.builder.master("local[1]").appName("medilake-setup")
 .config("spark.jars.packages", sys.argv[1]).config("spark.jars.ivy", sys.argv[2])
 .config("spark.ui.enabled", "false").getOrCreate().stop())
"""


def resolve_delta_jars(jars: str | Path | None = None, force: bool = False) -> list[Path]:
    """Download ``config.DELTA_PACKAGE`` and its dependencies with Spark's Ivy, once.

    Jars that pyspark already ships (Hadoop, Parquet, Jackson…) are left out so that Spark's own
    versions are the only ones on the classpath. Returns the cached jar paths.

    Raises
    ------
    SetupError: Java missing, or Maven Central unreachable (the message quotes Spark's error).
    """
    target = config.jars_dir(jars)
    if not force and any(p.name.startswith("io.delta_delta-spark") for p in cached_jars(jars)):
        return cached_jars(jars)
    require_java()
    import pyspark

    with tempfile.TemporaryDirectory(prefix="medilake-ivy-") as ivy:
        # A child process, so that Ivy's resolution log (hundreds of lines, written by the JVM
        # straight to stderr) is shown only when the resolution fails.
        out = subprocess.run([sys.executable, "-c", _IVY_RESOLVE, config.DELTA_PACKAGE, ivy],
                             capture_output=True, text=True, timeout=1800)
        resolved = sorted(Path(ivy, "jars").glob("*.jar"))
        if out.returncode or not resolved:
            log = "\n".join((out.stdout + out.stderr).strip().splitlines()[-25:])
            raise SetupError(f"Spark's Ivy could not fetch {config.DELTA_PACKAGE} from Maven Central "
                             f"(is https://repo1.maven.org reachable?). Its last lines:\n{log}")
        spark_jars = {_artifact(p.name) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for jar in resolved:
            if _artifact(jar.name) not in spark_jars:
                shutil.copy2(jar, target / jar.name)
    return cached_jars(jars)
