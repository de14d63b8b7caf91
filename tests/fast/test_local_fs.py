"""The kit's local file system jar without a JVM: where it goes, when it is used, how set-up builds
it and what set-up says when it cannot (the Spark side is in tests/test_session.py)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from medilake_lab.errors import SetupError
from medilake_lab.runtime import class_archive, jars, local_fs, pipelines

needs_javac = pytest.mark.skipif(local_fs._javac() is None, reason="no javac (a JDK) on this machine")


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("MEDILAKE_JARS", str(tmp_path / "jars"))
    return tmp_path / "jars"


@pytest.fixture
def sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A copy of the Java sources that a test may change."""
    copy = tmp_path / "java"
    shutil.copytree(local_fs.SOURCES, copy)
    monkeypatch.setattr(local_fs, "SOURCES", copy)
    return copy


def test_the_jar_is_named_for_its_sources_and_kept_apart_from_the_delta_jars(cache: Path, sources: Path) -> None:
    path = local_fs.jar_path()
    assert path.parent == cache / "kit" and path.name.startswith("medilake-local-fs-")
    raw = next(sources.rglob("NioRawLocalFileSystem.java"))
    raw.write_text(raw.read_text() + "\n// changed\n")
    assert local_fs.jar_path() != path
    changed = local_fs.jar_path()
    shadow = sources / "resources" / "yarn-default.xml"
    shadow.write_text(shadow.read_text() + "\n")
    assert local_fs.jar_path() != changed, "its resources are digested too"
    path.parent.mkdir(parents=True)
    local_fs.jar_path().write_bytes(b"")
    assert jars.cached_jars() == [], "never taken for a Delta jar (spark.jars)"


def test_local_jvms_use_it_only_once_built_and_first_on_their_class_path(cache: Path, tmp_path: Path,
                                                                          monkeypatch) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / pipelines.SPEC_NAME).write_text("name: demo\n")
    pipeline = pipelines.load_pipeline(project, tmp_path / "wh")
    delta = cache / "io.delta_delta-spark_4.2_2.13-4.4.0.jar"
    delta.parent.mkdir(parents=True)
    delta.write_bytes(b"")
    assert local_fs.installed() is None and jars.driver_class_path() == [delta]
    without = pipelines.spark_defaults(pipeline, jars.driver_class_path())
    assert without["spark.driver.extraClassPath"] == str(delta)
    assert not set(local_fs.SPARK_CONF) & set(without), "Hadoop's own file system without the jar"

    monkeypatch.setattr(class_archive, "java_version_text", lambda: 'openjdk version "17.0.15"\n')
    archive = class_archive.archive_path()
    local_fs.jar_path().parent.mkdir(parents=True)
    local_fs.jar_path().write_bytes(b"")
    assert local_fs.installed() == local_fs.jar_path()
    assert jars.driver_class_path() == [local_fs.jar_path(), delta], "first: the archive's class path"
    written = pipelines.spark_defaults(pipeline, jars.driver_class_path())
    assert written["spark.driver.extraClassPath"].split(":") == [str(local_fs.jar_path()), str(delta)]
    assert {key: written[key] for key in local_fs.SPARK_CONF} == local_fs.SPARK_CONF
    assert class_archive.archive_path() != archive, "the jar changes the class path the archive was made with"
    assert local_fs.spark_conf([delta]) == {}, "named only for a JVM that has the jar"


def test_setup_without_a_jdk_says_spark_works_without_it(cache: Path, monkeypatch) -> None:
    monkeypatch.setattr(local_fs, "_javac", lambda: None)
    with pytest.raises(SetupError, match=r"no `javac` found.*Install a JDK 17"):
        local_fs.build_jar()
    assert local_fs.installed() is None


@needs_javac
def test_setup_compiles_the_classes_into_the_jar_once(cache: Path) -> None:
    path = local_fs.build_jar()
    assert path == local_fs.installed()
    with zipfile.ZipFile(path) as jar:
        names = set(jar.namelist())
    assert {"medilake/hadoop/NioLocalFileSystem.class", "medilake/hadoop/NioRawLocalFileSystem.class",
            "medilake/hadoop/NioLocalFs.class", "medilake/hadoop/NioLocalFs$Raw.class"} <= names
    with zipfile.ZipFile(path) as jar:  # at the class path's root, where Hadoop looks for it
        shadow = ElementTree.fromstring(jar.read("yarn-default.xml"))
    assert shadow.tag == "configuration" and len(shadow) == 0, "a valid configuration with no property"
    built = path.stat().st_mtime_ns
    assert local_fs.build_jar() == path and path.stat().st_mtime_ns == built, "cached: not compiled again"
    assert not list(path.parent.glob("*.partial"))


@needs_javac
def test_a_compiler_error_is_quoted_and_no_jar_is_left(cache: Path, sources: Path) -> None:
    raw = next(sources.rglob("NioRawLocalFileSystem.java"))
    raw.write_text(raw.read_text().replace("extends RawLocalFileSystem", "extends NoSuchFileSystem"))
    with pytest.raises(SetupError, match=r"(?s)Spark works without them.*error: cannot find symbol.*NoSuchFileSystem"):
        local_fs.build_jar()
    assert local_fs.installed() is None and not list(cache.rglob("*.jar")) and not list(cache.rglob("*.partial"))
