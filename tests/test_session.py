"""The Delta session, the warehouse layout and the set-up checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from medilake_lab.errors import SetupError
from medilake_lab.runtime import config
from medilake_lab.runtime import jars as setup


def test_table_path_follows_warehouse_override(tmp_path: Path) -> None:
    assert config.table_path("silver", "patients_scd", tmp_path) == tmp_path / "silver" / "patients_scd"


def test_env_var_overrides_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDILAKE_DATA", str(tmp_path))
    assert config.data_dir() == tmp_path.resolve()


def test_missing_jars_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="make setup"):
        setup.require_jars(tmp_path / "empty")


def test_old_java_is_refused_with_install_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(setup, "java_version", lambda: 11)
    with pytest.raises(SetupError, match=r"Java 17\+ \(found: 11\).*openjdk-17"):
        setup.require_java()


@pytest.mark.parametrize(("jar", "artifact"), [
    ("io.delta_delta-spark_4.2_2.13-4.4.0.jar", "delta-spark_4.2_2.13"),
    ("org.apache.parquet_parquet-column-1.16.0.jar", "parquet-column"),
    ("parquet-column-1.17.0.jar", "parquet-column"),
    ("com.github.luben_zstd-jni-1.5.7-3.jar", "zstd-jni"),
])
def test_ivy_jar_names_map_to_artifacts(jar: str, artifact: str) -> None:
    assert setup._artifact(jar) == artifact


@pytest.mark.spark
def test_session_is_delta_enabled_and_tables_resolve_in_a_new_process(spark_session, tmp_path: Path) -> None:
    from medilake_lab.runtime.spark import register_warehouse

    conf = spark_session.conf
    assert conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"
    spark_session.range(5).write.format("delta").save(str(tmp_path / "bronze" / "demo"))
    assert "bronze.demo" in register_warehouse(spark_session, tmp_path)
    assert spark_session.table("bronze.demo").count() == 5
    # a second JVM opens the same warehouse while this session is still alive (no metastore lock)
    code = ("from medilake_lab.runtime.spark import get_spark; "
            f"print(get_spark({str(tmp_path)!r}).table('bronze.demo').count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "5"
    # start-up is quiet: errors only (log4j2.properties), no log-level notice in every first cell
    assert "Setting default log level" not in out.stderr and " WARN " not in out.stderr, out.stderr
    if config.collector() == config.COLLECTOR:  # the driver JVM runs the Parallel collector, not G1
        beans = spark_session._jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
        assert {bean.getName() for bean in beans} == {"PS Scavenge", "PS MarkSweep"}


@pytest.mark.parametrize(("variable", "value", "chosen"), [
    ("JAVA_TOOL_OPTIONS", "", None),
    ("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1", None),  # the test suite's JIT option
    ("JAVA_TOOL_OPTIONS", "-XX:+UseAdaptiveSizePolicyWithSystemGC -XX:-UseG1GC", None),  # tuning, not a choice
    ("JAVA_TOOL_OPTIONS", "-Xmx3g -XX:+UseG1GC", "-XX:+UseG1GC"),
    ("JDK_JAVA_OPTIONS", "-XX:+UseSerialGC", "-XX:+UseSerialGC"),
    ("_JAVA_OPTIONS", "-XX:+UseZGC -XX:+ZGenerational", "-XX:+UseZGC"),
])
def test_the_collector_is_parallel_unless_the_environment_chose_one(variable, value, chosen) -> None:
    # two collectors on one JVM's command line stop it from starting: a learner's choice wins
    environ = {variable: value}
    assert config.collector_option(environ) == ("" if chosen else "-XX:+UseParallelGC")
    assert config.collector(environ) == (chosen or "-XX:+UseParallelGC")  # what the class-data archive is for


@pytest.mark.spark
def test_active_session_is_reused(spark_session) -> None:
    from medilake_lab.runtime.spark import get_spark

    assert get_spark() is spark_session


@pytest.mark.spark
def test_a_running_session_sees_tables_another_process_created(spark_session) -> None:
    """Issue 15 item 9: ``catchup`` in a terminal builds tables while a notebook's session runs;
    the notebook's next ``get_spark()`` registers them (lab 02's first cell then finds bronze)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from medilake_lab.runtime.spark import WAREHOUSE_CONF, get_spark

    root = Path(spark_session.conf.get(WAREHOUSE_CONF))
    write_deltalake(str(root / "bronze" / "built_meanwhile"), pa.table({"id": [1, 2, 3]}))
    assert not spark_session.catalog.tableExists("bronze.built_meanwhile"), "the fault: not seen yet"
    spark = get_spark()
    assert spark is spark_session
    assert spark.catalog.tableExists("bronze.built_meanwhile")
    assert spark.table("bronze.built_meanwhile").count() == 3
    (root / "silver" / "not_delta").mkdir(parents=True)  # a folder without a Delta log is no table
    get_spark()
    assert not spark.catalog.tableExists("silver.not_delta")
    # reset/catchup move a table into a backup: the running session forgets it, so that the lab's
    # CREATE TABLE IF NOT EXISTS builds it again instead of finding a stale entry
    (root / "bronze" / "built_meanwhile").rename(root.parent / "moved_to_backup")
    get_spark()
    assert not spark.catalog.tableExists("bronze.built_meanwhile")
    assert (root.parent / "moved_to_backup" / "_delta_log").is_dir(), "only the catalog entry is dropped"


def test_jar_cache_is_shared_by_every_learner_state(monkeypatch, tmp_path) -> None:
    """The jars are fetched once per machine: another MEDILAKE_STATE must not hide them."""
    from medilake_lab.runtime import config

    monkeypatch.delenv("MEDILAKE_JARS", raising=False)
    monkeypatch.delenv("MEDILAKE_WAREHOUSE", raising=False)
    monkeypatch.setenv("MEDILAKE_STATE", str(tmp_path / "state"))
    assert config.jars_dir() == config.project_root() / ".medilake" / "jars"
    assert config.warehouse_dir() == tmp_path / "state" / "warehouse"


def test_java_version_text_leaves_out_the_notes_on_options_from_the_environment(monkeypatch) -> None:
    """The class-data archive's name digests this text: the suite's JAVA_TOOL_OPTIONS (C1 JIT) must
    not make its JVMs look for another archive than the one `setup` wrote without them."""
    if setup.java_version_text() is None:
        pytest.skip("no Java on this machine")
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-Xss4m")
    setup._version_text.cache_clear()  # not the answer cached before
    text = setup.java_version_text()
    assert text and "version" in text and "Picked up" not in text
    monkeypatch.delenv("JAVA_TOOL_OPTIONS")
    setup._version_text.cache_clear()
    assert setup.java_version_text() == text


def test_class_archive_is_named_for_the_java_and_pyspark_it_was_made_with(monkeypatch, tmp_path) -> None:
    from medilake_lab.runtime import class_archive

    monkeypatch.setenv("MEDILAKE_JARS", str(tmp_path / "jar cache"))  # a space: the option quotes it
    monkeypatch.setattr(class_archive, "java_version_text", lambda: 'openjdk version "17.0.15"\n')
    path = class_archive.archive_path()
    assert path is not None and path.parent == tmp_path / "jar cache" and path.suffix == ".jsa"
    assert class_archive.java_options() == "", "no archive yet: no option (the JVM would warn)"
    path.parent.mkdir()
    path.write_bytes(b"")
    assert class_archive.java_options() == f"-XX:SharedArchiveFile='{path}' {class_archive.QUIET}"
    vm = 'openjdk version "17.0.15"\nOpenJDK 64-Bit Server VM (build 17.0.15+6, mixed mode{}, sharing)\n'
    monkeypatch.setattr(class_archive, "java_version_text", lambda: vm.format(""))
    path = class_archive.archive_path()
    # the suite's C1 JIT (-XX:TieredStopAtLevel=1) adds "emulated-client" to that line: the same JVM
    monkeypatch.setattr(class_archive, "java_version_text", lambda: vm.format(", emulated-client"))
    assert class_archive.archive_path() == path
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-XX:+UseG1GC")  # the learner's collector: JVMs would not map it
    g1 = class_archive.archive_path()
    assert g1 != path
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-XX:+UseSerialGC")
    assert class_archive.archive_path() not in (path, g1)
    monkeypatch.delenv("JAVA_TOOL_OPTIONS")
    monkeypatch.setattr(class_archive, "java_version_text", lambda: vm.replace("17.0.15+6", "17.0.16+8"))
    assert class_archive.archive_path() != path
    monkeypatch.setattr(class_archive, "java_version_text", lambda: 'openjdk version "21.0.5"\n')
    assert class_archive.archive_path() != path and class_archive.java_options() == ""
    monkeypatch.setattr(class_archive, "java_version_text", lambda: None)
    assert class_archive.archive_path() is None and class_archive.java_options() == ""


#: A child: a session get_spark starts, logging where the JVM loaded each class from.
_CLASS_LOAD_CHILD = """
import sys
from medilake_lab.runtime import spark as kit
kit.LOCAL_CONF["spark.driver.extraJavaOptions"] += f" -Xlog:class+load=info:file={sys.argv[1]}"
spark = kit.get_spark(sys.argv[2])
print(sorted(b.getName() for b in spark._jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()))
print(spark.range(3).count())
"""


@pytest.mark.spark
def test_new_sessions_map_sparks_classes_from_the_archive_and_start_quietly_without(monkeypatch, tmp_path) -> None:
    """`setup`'s class-data archive, written here into a jar cache whose path has a space (the JVM
    options quote it): a JVM that get_spark starts maps Spark's classes from it, whatever its JIT
    options (the suite's JVMs run with C1 only, `setup` without); one that cannot use it (another
    class path: SPARK_CONF_DIR holding a file) starts as before, without a warning in a notebook's
    stderr. A collector chosen in JAVA_TOOL_OPTIONS runs instead of the kit's (two would stop the JVM
    from starting), without the archive (written under the kit's collector)."""
    import os

    from medilake_lab.runtime import class_archive, local_fs

    cache = tmp_path / "jar cache"
    cache.mkdir()
    for jar in setup.require_jars():  # the Delta jars, as `setup` cached them
        (cache / jar.name).symlink_to(jar)
    if local_fs.installed():  # and the kit's local file system jar: the real driver class path
        (cache / "kit").mkdir()
        (cache / "kit" / local_fs.installed().name).symlink_to(local_fs.installed())
    monkeypatch.setenv("MEDILAKE_JARS", str(cache))  # for this process and the children
    with monkeypatch.context() as setup_env:  # as `make setup` runs: without the suite's C1 JIT
        setup_env.delenv("JAVA_TOOL_OPTIONS", raising=False)
        archive = class_archive.build_archive()
    assert archive == class_archive.archive_path() and archive.parent == cache
    assert archive.stat().st_size > 10_000_000 and not list(cache.glob("*.partial"))
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "spark-defaults.conf").write_text("spark.ui.enabled false\n")
    for name, env in (("mapped", {}), ("other-class-path", {"SPARK_CONF_DIR": str(conf)}),
                      ("other-collector", {"JAVA_TOOL_OPTIONS": "-XX:+UseSerialGC"})):
        log = tmp_path / f"{name}.log"
        out = subprocess.run([sys.executable, "-c", _CLASS_LOAD_CHILD, str(log), str(tmp_path / name)],
                             capture_output=True, text=True, timeout=300, env={**os.environ, **env})
        assert out.returncode == 0 and out.stdout.strip().endswith("3"), out.stderr[-2000:]
        collectors = out.stdout.strip().splitlines()[-2]
        assert collectors == ("['Copy', 'MarkSweepCompact']" if name == "other-collector"  # the Serial collector
                              else "['PS MarkSweep', 'PS Scavenge']"), collectors
        source = next(line for line in log.read_text().splitlines() if " org.apache.spark.SparkContext " in line)
        if name == "mapped":
            assert source.endswith("source: shared objects file (top)"), source
        else:
            assert "spark-core" in source, source
            assert "archive" not in out.stderr.lower() and "cds" not in out.stderr.lower(), out.stderr


@pytest.mark.spark
def test_local_sessions_use_the_kits_file_system_with_hadoops_permissions_and_statuses(spark_session,
                                                                                      tmp_path) -> None:
    """Where `setup` could compile it (a JDK), a local session reads and writes `file:` paths through
    the kit's classes (`local_fs`), FileSystem and FileContext alike; what they leave on disk and
    report is what Hadoop's own LocalFileSystem leaves and reports, side by side: the modes of
    created files, their .crc and folders, a permission set later, and the link status of a file,
    a folder, a symbolic link and a missing path."""
    import os
    import stat

    from py4j.protocol import Py4JJavaError

    from medilake_lab.runtime import local_fs

    if local_fs._javac() is not None:
        assert local_fs.installed() is not None, "`make setup` builds it wherever a JDK is"
    if local_fs.installed() is None:
        pytest.skip("no local file system jar on this machine (no JDK's javac at set-up)")
    jvm, conf = spark_session._jvm, spark_session._jsc.hadoopConfiguration()
    hadoop_fs = jvm.org.apache.hadoop.fs
    kit = hadoop_fs.FileSystem.getLocal(conf)
    assert kit.getClass().getName() == "medilake.hadoop.NioLocalFileSystem"
    assert hadoop_fs.FileContext.getLocalFSFileContext(conf).getDefaultFileSystem().getClass().getName() \
        == "medilake.hadoop.NioLocalFs"
    stock = hadoop_fs.LocalFileSystem()
    stock.initialize(kit.getUri(), conf)

    def modes(root: Path) -> dict[str, str]:
        return {p.relative_to(root).as_posix(): oct(stat.S_IMODE(p.lstat().st_mode)) for p in sorted(root.rglob("*"))}

    for name, system in (("kit", kit), ("hadoop", stock)):
        root = tmp_path / name
        out = system.create(hadoop_fs.Path(str(root / "a" / "b" / "part-0.parquet")))
        out.write(7)
        out.close()
        system.mkdirs(hadoop_fs.Path(str(root / "private")), jvm.org.apache.hadoop.fs.permission.FsPermission.valueOf(
            "drwxr-x---"))
        (root / "restricted").write_text("x")
        system.setPermission(hadoop_fs.Path(str(root / "restricted")),
                             jvm.org.apache.hadoop.fs.permission.FsPermission.valueOf("-rw-------"))
        os.symlink(root / "a", root / "link")
    assert modes(tmp_path / "kit") == modes(tmp_path / "hadoop")
    assert modes(tmp_path / "kit")["restricted"] == "0o600" and modes(tmp_path / "kit")["private"] == "0o750"
    assert ".part-0.parquet.crc" in {p.name for p in (tmp_path / "kit" / "a" / "b").iterdir()}

    def link_status(system, path: str) -> tuple:
        try:
            found = system.getRawFileSystem().getFileLinkStatus(hadoop_fs.Path(path))
        except Py4JJavaError as exc:
            return (exc.java_exception.getClass().getSimpleName(),)
        return found.isFile(), found.isDirectory(), found.isSymlink(), found.getLen()

    for relative in ("a/b/part-0.parquet", "a", "link", "missing"):
        for form in (Path.as_uri, str):  # Hadoop sees a link only in a path without its scheme
            assert link_status(kit, form(tmp_path / "kit" / relative)) == \
                link_status(stock, form(tmp_path / "hadoop" / relative)), (relative, form)
    assert link_status(kit, str(tmp_path / "kit" / "missing")) == ("FileNotFoundException",)
    assert link_status(kit, str(tmp_path / "kit" / "link"))[2] is True


#: A child: a local session get_spark starts, writing and reading a Delta table.
_WRITE_CHILD = """
import sys
from medilake_lab.runtime.spark import get_spark
spark = get_spark(sys.argv[1])
try:
    spark.range(10).write.format("delta").save(sys.argv[1] + "/bronze/t")
    print("rows", spark.read.format("delta").load(sys.argv[1] + "/bronze/t").count())
except Exception as exc:
    print("failed:", "Cannot run program" in str(exc) and "chmod" in str(exc))
"""


@pytest.mark.spark
def test_a_local_session_writes_delta_without_starting_chmod_or_readlink(tmp_path) -> None:
    """The point of the kit's local file system, both ways: on a PATH without `chmod` and
    `readlink`, a local session writes and reads a Delta table with it, and fails without it
    (Hadoop's own classes start those programs for every file and commit)."""
    import os

    from medilake_lab.runtime import local_fs

    if local_fs.installed() is None:
        pytest.skip("no local file system jar on this machine (no JDK's javac at set-up)")
    tools = tmp_path / "bin"  # every program on PATH but those two
    tools.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        for program in Path(folder).glob("*") if Path(folder).is_dir() else []:
            if program.name not in ("chmod", "readlink") and not (tools / program.name).exists():
                (tools / program.name).symlink_to(program)
    hadoops = tmp_path / "jar cache"  # the Delta jars only: Hadoop's own local file system
    hadoops.mkdir()
    for jar in setup.require_jars():
        (hadoops / jar.name).symlink_to(jar)
    outcomes = {}
    for name, jars in (("kit", str(config.jars_dir())), ("hadoop", str(hadoops))):
        out = subprocess.run([sys.executable, "-c", _WRITE_CHILD, str(tmp_path / name)], capture_output=True,
                             text=True, timeout=300, env={**os.environ, "PATH": str(tools), "MEDILAKE_JARS": jars})
        assert out.returncode == 0, out.stderr[-2000:]
        outcomes[name] = out.stdout.strip().splitlines()[-1]
    assert outcomes == {"kit": "rows 10", "hadoop": "failed: True"}, outcomes


@pytest.mark.spark
def test_local_sessions_read_no_yarn_defaults_when_the_kits_jar_shadows_them(spark_session) -> None:
    """Hadoop's yarn-default.xml (hundreds of YARN settings, which local mode never reads) is in
    pyspark's hadoop-client-api jar; the kit's jar, first on a local driver's class path, holds an
    empty one, so the Hadoop configurations Spark makes, copies and ships carry none of them."""
    import zipfile

    from medilake_lab.runtime import local_fs

    if local_fs.installed() is None:
        pytest.skip("no local file system jar on this machine (no JDK's javac at set-up)")
    hadoop = next((config.spark_home() / "jars").glob("hadoop-client-api-*.jar"))
    with zipfile.ZipFile(hadoop) as jar:
        assert jar.read("yarn-default.xml").count(b"<property>") > 300, "what the kit's jar shadows"
    jvm = spark_session.sparkContext._jvm
    jvm.org.apache.hadoop.mapred.JobConf()  # MapReduce's classes add yarn-default.xml to every configuration
    conf = spark_session._jsparkSession.sessionState().newHadoopConf()
    assert local_fs.installed().name in conf.getResource("yarn-default.xml").toString()
    entries, from_yarn = conf.iterator(), []
    while entries.hasNext():
        key = entries.next().getKey()
        if "yarn-default.xml" in list(conf.getPropertySources(key) or []):
            from_yarn.append(key)
    assert from_yarn == []
    assert conf.get("fs.file.impl") == local_fs.SPARK_CONF["spark.hadoop.fs.file.impl"]  # the rest is there
    assert conf.get("mapreduce.job.reduces") is not None, "mapred-default.xml is read as before"
