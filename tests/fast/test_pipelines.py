"""The kit's spark-pipelines runner without a JVM: spec loading, the conf dir it writes, the
command line, how a run's output becomes progress and a failure message, and the expectation
decorators' declarations (lab 06 spike)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from medilake_lab.errors import PipelineError, UsageError
from medilake_lab.runtime import config, expectations, pipelines

SOLUTION = config.project_root() / "solutions" / "06_declarative_pipelines"


def _project(tmp_path: Path, name: str = "demo") -> Path:
    (tmp_path / "transformations").mkdir(parents=True)
    (tmp_path / pipelines.SPEC_NAME).write_text(
        f"name: {name}\nstorage: file:///elsewhere\nlibraries:\n  - glob:\n      include: transformations/**\n")
    return tmp_path


def test_load_pipeline_finds_the_spec_in_a_folder_and_uses_the_warehouse(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    found = pipelines.load_pipeline(project, tmp_path / "wh")
    assert (found.spec, found.name) == (project / pipelines.SPEC_NAME, "demo")
    assert found.home == tmp_path / "wh" / "volumes" / "pipelines" / "demo"
    assert found.checkpoint("bronze", "t") == found.home / "storage/_checkpoints/spark_catalog/bronze/t/t"


def test_the_solution_spec_loads() -> None:
    assert pipelines.load_pipeline(SOLUTION).name == "medilake_lab06"


@pytest.mark.parametrize(("text", "problem"), [(None, "no pipeline spec"), ("name: ../up\n", "one folder name"),
                                               ("- a list\n", "one folder name"), ("name: [\n", "not valid YAML")])
def test_load_pipeline_refuses_a_missing_or_bad_spec(tmp_path: Path, text: str | None, problem: str) -> None:
    if text is not None:
        (tmp_path / pipelines.SPEC_NAME).write_text(text)
    with pytest.raises(UsageError, match=problem) as raised:
        pipelines.load_pipeline(tmp_path, tmp_path)
    assert str(tmp_path / pipelines.SPEC_NAME) in str(raised.value)


def test_conf_dir_puts_delta_jars_warehouse_and_a_private_metastore_in_spark_defaults(tmp_path: Path) -> None:
    pipeline = pipelines.load_pipeline(_project(tmp_path / "p"), tmp_path / "wh")
    jars = [tmp_path / "jars" / "io.delta_delta-spark.jar", tmp_path / "jars" / "io.delta_delta-storage.jar"]
    folder = pipelines.write_conf_dir(pipeline, jars)
    lines = (folder / "spark-defaults.conf").read_text().splitlines()
    written = dict(line.split(" ", 1) for line in lines if line and not line.startswith("#"))
    assert written["spark.driver.extraClassPath"].split(":") == [str(j) for j in jars]
    assert written["spark.sql.warehouse.dir"] == str(tmp_path / "wh")
    assert written["spark.sql.sources.default"] == "delta"
    assert written["spark.sql.catalogImplementation"] == "hive"
    assert written["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    metastore = pipeline.home / "metastore"
    assert f"databaseName={metastore}/metastore_db;" in written["spark.hadoop.javax.jdo.option.ConnectionURL"]
    assert f"-Dderby.system.home={metastore}" in written["spark.driver.extraJavaOptions"]


def test_command_passes_spec_storage_and_schema_locations_to_the_kit_driver(tmp_path: Path) -> None:
    pipeline = pipelines.load_pipeline(_project(tmp_path / "p"), tmp_path / "wh")
    argv = pipelines.command(pipeline, "run", full_refresh=True)
    assert Path(argv[0]).name == "spark-class" and argv[1] == "org.apache.spark.deploy.SparkPipelines"
    assert argv[2:9] == [str(pipelines.DRIVER), "run", str(pipeline.spec), pipeline.storage.as_uri(),
                         str(pipeline.event_log), "1", f"bronze={tmp_path / 'wh' / 'bronze'}"]
    assert argv[9:] == [f"{s}={tmp_path / 'wh' / s}" for s in ("silver", "gold")]
    assert pipelines.command(pipeline, "dry-run")[3] == "dry-run"


@pytest.mark.parametrize(("action", "full_refresh", "problem"), [("walk", False, "one of run, dry-run"),
                                                                  ("dry-run", True, "--full-refresh needs `run`")])
def test_command_refuses_bad_combinations(tmp_path: Path, action: str, full_refresh: bool, problem: str) -> None:
    pipeline = pipelines.load_pipeline(_project(tmp_path), tmp_path)
    with pytest.raises(UsageError, match=problem):
        pipelines.command(pipeline, action, full_refresh)


def _fake_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, script: str) -> pipelines.Pipeline:
    """A pipeline whose 'launcher' is a Python script printing what the real client prints."""
    fake = tmp_path / "fake_client.py"
    fake.write_text(textwrap.dedent(script))
    monkeypatch.setattr(pipelines, "require_java", lambda: 17)
    monkeypatch.setattr(pipelines, "require_jars", lambda: [tmp_path / "delta.jar"])
    monkeypatch.setattr(pipelines, "command", lambda *args: [sys.executable, str(fake)])
    return pipelines.load_pipeline(_project(tmp_path / "p"), tmp_path / "wh")


def test_a_run_streams_events_and_keeps_everything_in_its_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pipeline = _fake_run(monkeypatch, tmp_path, """
        print("26/12/02 07:25:21 WARN Utils: Your hostname resolves to a loopback address")
        print("2026-12-02 07:28:48: Flow spark_catalog.bronze.t is RUNNING.")
        print("2026-12-02 07:29:41: Run is COMPLETED.")
    """)
    seen: list[tuple[str, str]] = []
    result = pipelines.run_pipeline(pipeline, echo=lambda at, message: seen.append((at, message)))
    assert seen == [("07:28:48", "Flow spark_catalog.bronze.t is RUNNING."), ("07:29:41", "Run is COMPLETED.")]
    assert result.events == [message for _, message in seen]
    assert result.log.parent == pipeline.logs and "WARN Utils" in result.log.read_text()
    assert (pipeline.conf_dir / "spark-defaults.conf").is_file()


def test_a_failed_run_names_the_flow_the_error_and_the_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pipeline = _fake_run(monkeypatch, tmp_path, """
        import sys
        print("2026-12-02 07:37:04: Flow 'spark_catalog.silver.encounters_dp' has FAILED.")
        print("Traceback (most recent call last):\\n  File x, line 1")
        print("MEDILAKE-ERROR: AnalysisException: [AUTOCDC_TARGET_DOES_NOT_SUPPORT_MERGE] no MERGE.")
        sys.exit(1)
    """)
    with pytest.raises(PipelineError) as raised:
        pipelines.run_pipeline(pipeline)
    message = str(raised.value)
    assert "failed flow(s): silver.encounters_dp" in message
    assert "[AUTOCDC_TARGET_DOES_NOT_SUPPORT_MERGE] no MERGE" in message
    assert str(raised.value.log) in message and "Traceback" not in message
    assert "Traceback" in Path(raised.value.log).read_text()


def test_expectation_decorators_declare_rules_in_order_with_their_actions() -> None:
    @expectations.expect("a", "x > 0")
    @expectations.expect_all_or_drop({"b": "y IS NOT NULL", "c": "z < 3"})
    @expectations.expect_or_fail("d", "w = 1")
    def rows():
        raise AssertionError("declaring must not run the query")

    assert [(e.name, e.action) for e in expectations.declared(rows)] == [
        ("d", "fail"), ("b", "drop"), ("c", "drop"), ("a", "warn")]
    assert rows.__name__ == "rows"
    assert expectations.Expectation("b", "y IS NOT NULL", "drop").passed() == "coalesce((y IS NOT NULL), false)"


def test_expectation_names_must_be_unique_per_dataset() -> None:
    with pytest.raises(ValueError, match="unique"):
        @expectations.expect("a", "x > 0")
        @expectations.expect_or_drop("a", "x IS NOT NULL")
        def rows():
            return None


def test_cli_pipeline_reports_a_bad_action_as_a_usage_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from medilake_lab.cli import app

    result = CliRunner().invoke(app, ["pipeline", "walk", str(SOLUTION), "-w", str(tmp_path)])
    assert result.exit_code == 2
    assert "pipeline action must be one of run, dry-run, got 'walk'" in result.output
    assert "Traceback" not in result.output


def test_a_failed_dry_run_names_the_unresolved_flow_and_the_server_error() -> None:
    events = ["Starting run...", "Failed to resolve flow: 'spark_catalog.gold.missing_input_dp'."]
    causes = ["[TABLE_OR_VIEW_NOT_FOUND] The table or view `spark_catalog`.`silver`.`nope` cannot be found."] * 2
    summary = pipelines.failure_summary(events, "AnalysisException: Failed to resolve flows in the pipeline.", 1,
                                        causes)
    assert summary == ("failed flow(s): gold.missing_input_dp; [TABLE_OR_VIEW_NOT_FOUND] The table or view "
                       "`spark_catalog`.`silver`.`nope` cannot be found; "
                       "AnalysisException: Failed to resolve flows in the pipeline")


# ------------------------------------------------------------------ lab 06's own landing volume

def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_lab06_volume_is_a_folder_of_its_own_beside_lab05s(tmp_path: Path) -> None:
    assert config.volume_dir(tmp_path, "lab06") == config.volume_dir(tmp_path) / "lab06" == tmp_path / "volumes/lab06"
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError, match="one folder name"):
            config.volume_dir(tmp_path, bad)


def test_delivery_to_lab06s_volume_leaves_lab05s_untouched(fast_data: Path, tmp_path: Path) -> None:
    from medilake_lab import deliver, prepare_landing

    lab05 = prepare_landing(fast_data, tmp_path)
    before = _tree(lab05)
    lab06 = prepare_landing(fast_data, tmp_path, volume="lab06")
    done = deliver(tmp_path, fast_data, volume="lab06")
    assert lab06 == tmp_path / "volumes" / "lab06" and done.volume == lab06 and done.batch == "004"
    assert done.files["encounters"] == lab06 / "landing" / "encounters" / "encounters_004.json.gz"
    assert json.loads((lab06 / "landing" / "manifest.json").read_text())["batches"][-1] == "004"
    assert {k: v for k, v in _tree(lab05).items() if not k.startswith("lab06/")} == before
    # the same seed and batches give the same bytes in either volume
    again = deliver(tmp_path, fast_data)
    assert again.batch == "004"
    assert again.files["encounters"].read_bytes() == done.files["encounters"].read_bytes()


def test_cli_delivers_into_a_named_volume(fast_data: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from medilake_lab.cli import app

    result = CliRunner().invoke(app, ["deliver", "-w", str(tmp_path), "--data", str(fast_data), "--volume", "lab06"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "volumes" / "lab06" / "landing" / "encounters" / "encounters_004.json.gz").is_file()
    assert not (tmp_path / "volumes" / "landing").exists()
    bad = CliRunner().invoke(app, ["deliver", "-w", str(tmp_path), "--volume", "../x"])
    assert bad.exit_code == 2 and "--volume" in bad.output and "one folder name" in bad.output
