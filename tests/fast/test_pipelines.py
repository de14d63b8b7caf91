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
from medilake_lab.runtime import config, event_log, expectations, pipelines

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


def test_conf_dir_puts_delta_jars_warehouse_and_a_private_metastore_in_spark_defaults(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    for variable in ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS", pipelines.JAVA_OPTIONS_ENV):
        monkeypatch.delenv(variable, raising=False)  # no collector chosen there: the kit picks Parallel
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path / "learners-conf"))
    monkeypatch.setattr(pipelines.class_archive, "java_options", lambda: "-XX:SharedArchiveFile=/a.jsa -Xlog:cds=off")
    pipeline = pipelines.load_pipeline(_project(tmp_path / "p"), tmp_path / "wh")
    jars = [tmp_path / "jars" / "io.delta_delta-spark.jar", tmp_path / "jars" / "io.delta_delta-storage.jar"]
    folder = pipelines.write_conf_dir(pipeline, jars, port=40123)
    lines = (folder / "spark-defaults.conf").read_text().splitlines()
    written = dict(line.split(" ", 1) for line in lines if line and not line.startswith("#"))
    assert written["spark.driver.extraClassPath"].split(":") == [str(j) for j in jars]
    assert written["spark.sql.warehouse.dir"] == str(tmp_path / "wh")
    assert written["spark.connect.grpc.binding.port"] == "40123"  # not Spark's fixed 15002: runs may overlap
    env = pipelines.environment(pipeline, 40123)
    assert env["MEDILAKE_CONNECT_PORT"] == "40123"
    # the server's JVM reads the same file; no conf folder on its class path (it would not map the archive)
    assert env["PYSPARK_SUBMIT_ARGS"] == f"--properties-file {folder / 'spark-defaults.conf'} pyspark-shell"
    assert "SPARK_CONF_DIR" not in env
    assert written["spark.sql.sources.default"] == "delta"
    assert written["spark.sql.catalogImplementation"] == "hive"
    assert written["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    metastore = pipeline.home / "metastore"
    assert f"databaseName={metastore}/metastore_db;" in written["spark.hadoop.javax.jdo.option.ConnectionURL"]
    assert f"-Dderby.system.home={metastore}" in written["spark.driver.extraJavaOptions"]
    assert "-XX:+UseParallelGC" in written["spark.driver.extraJavaOptions"].split()  # as the notebooks' JVM
    assert written["spark.driver.defaultJavaOptions"] == "-XX:SharedArchiveFile=/a.jsa -Xlog:cds=off"
    monkeypatch.setattr(pipelines.class_archive, "java_options", lambda: "")  # no archive: no option
    assert "spark.driver.defaultJavaOptions" not in pipelines.spark_defaults(pipeline, jars)
    spaced = pipelines.load_pipeline(pipeline.spec, tmp_path / "my warehouse")  # a JVM option per word otherwise
    assert f"-Dderby.system.home='{spaced.metastore}'" in pipelines.spark_defaults(spaced, jars)[
        "spark.driver.extraJavaOptions"]


@pytest.mark.parametrize("variable", ["JAVA_TOOL_OPTIONS", pipelines.JAVA_OPTIONS_ENV])
def test_a_collector_chosen_for_the_server_replaces_the_kits(tmp_path: Path, monkeypatch, variable) -> None:
    """Two collectors stop a JVM from starting: one chosen in the server's environment (the
    learner's JAVA_TOOL_OPTIONS or the run's own options) is the only one."""
    monkeypatch.setenv(variable, "-XX:+UseSerialGC")
    pipeline = pipelines.load_pipeline(_project(tmp_path / "p"), tmp_path / "wh")
    written = pipelines.spark_defaults(pipeline, [], port=40123)
    assert "-XX:+UseParallelGC" not in written["spark.driver.extraJavaOptions"]
    assert "-XX:+UseSerialGC" in pipelines.environment(pipeline, 40123)["JAVA_TOOL_OPTIONS"]


def test_command_runs_the_kit_driver_with_spec_storage_and_schema_locations(tmp_path: Path) -> None:
    pipeline = pipelines.load_pipeline(_project(tmp_path / "p"), tmp_path / "wh")
    argv = pipelines.command(pipeline, "run", full_refresh=True)
    assert argv[:2] == [sys.executable, str(pipelines.DRIVER)]  # no launcher JVMs: pyspark starts the server
    assert argv[2:8] == ["run", str(pipeline.spec), pipeline.storage.as_uri(),
                         str(pipeline.event_log), "1", f"bronze={tmp_path / 'wh' / 'bronze'}"]
    assert argv[8:] == [f"{s}={tmp_path / 'wh' / s}" for s in ("silver", "gold")]
    assert pipelines.command(pipeline, "dry-run")[2] == "dry-run"


def test_a_run_starts_its_own_server_or_uses_a_kept_one_and_leaks_no_connect_state(tmp_path: Path,
                                                                                    monkeypatch) -> None:
    leaking = {"SPARK_LOCAL_REMOTE": "1", "SPARK_CONNECT_MODE_ENABLED": "1", pipelines.TOKEN_ENV: "learners",
               "PYSPARK_GATEWAY_PORT": "4242", "PYSPARK_GATEWAY_SECRET": "s", "PYSPARK_REMOTE_INIT_CONF_0": "{}"}
    for variable, value in {"SPARK_REMOTE": "sc://elsewhere:1", **leaking}.items():
        monkeypatch.setenv(variable, value)
    pipeline = pipelines.load_pipeline(_project(tmp_path / "p"), tmp_path / "wh")
    own = pipelines.environment(pipeline, 40123)
    assert own["SPARK_REMOTE"] == "local"  # pyspark starts the run's server on the properties file
    assert not set(leaking) & set(own), "a gateway port would attach the run to this process's JVM"
    assert pipelines.spark_defaults(pipeline, [], 40123)["spark.connect.grpc.binding.address"] == "127.0.0.1"
    kept = pipelines.environment(pipeline, 40123, "sc://localhost:40123", "t0ken")
    assert (kept["SPARK_REMOTE"], kept[pipelines.TOKEN_ENV]) == ("sc://localhost:40123", "t0ken")


@pytest.mark.parametrize(("action", "full_refresh", "problem"), [("walk", False, "one of run, dry-run"),
                                                                  ("dry-run", True, "--full-refresh needs `run`")])
def test_command_refuses_bad_combinations(tmp_path: Path, action: str, full_refresh: bool, problem: str) -> None:
    pipeline = pipelines.load_pipeline(_project(tmp_path), tmp_path)
    with pytest.raises(UsageError, match=problem):
        pipelines.command(pipeline, action, full_refresh)


def _fake_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, script: str) -> pipelines.Pipeline:
    """A pipeline whose client is a Python script printing what the real client prints."""
    fake = tmp_path / "fake_client.py"
    fake.write_text(textwrap.dedent(script))
    monkeypatch.setattr(pipelines, "require_java", lambda: 17)
    monkeypatch.setattr(pipelines, "driver_class_path", lambda: [tmp_path / "delta.jar"])
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


#: a client that reports the server it was pointed at, as an event line the runner collects
REPORTING_CLIENT = """
    import os
    token = os.environ.get("SPARK_CONNECT_AUTHENTICATE_TOKEN")
    print(f"2026-12-02 07:28:48: remote {os.environ['SPARK_REMOTE']} token {token}")
"""
#: a server host that behaves like sdp_server: listens on the properties file's port, says it is
#: ready, serves until its standard input closes, then removes its record (its argument)
FAKE_SERVER = """
    import os, socket, sys
    from pathlib import Path
    marker = Path(sys.argv[1])
    port = next(int(line.split()[1]) for line in open(marker.parent / "conf" / "spark-defaults.conf")
                if line.startswith("spark.connect.grpc.binding.port"))
    listener = socket.create_server(("127.0.0.1", port))
    print("starting"); print("MEDILAKE-SERVER-READY", flush=True)
    sys.stdin.read()
    marker.unlink(missing_ok=True)
    print("stopped", flush=True)
"""


def _fake_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, script: str = FAKE_SERVER) -> Path:
    """Runs ``script`` as the server host, under sdp_server's name (what another process's record is checked for)."""
    host = tmp_path / "fake" / pipelines.SERVER.name
    host.parent.mkdir()
    host.write_text(textwrap.dedent(script))
    monkeypatch.setattr(pipelines, "SERVER", host)
    return host


def test_a_kept_server_serves_the_next_runs_until_it_is_stopped(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    pipeline = _fake_run(monkeypatch, tmp_path, REPORTING_CLIENT)
    _fake_server(monkeypatch, tmp_path)
    try:
        first = pipelines.run_pipeline(pipeline, keep_server=True)
        server = pipelines._SERVERS[pipeline.home]
        assert first.events == [f"remote sc://localhost:{server.port} token {server.token}"]
        marker = json.loads((pipeline.home / "server.json").read_text())
        assert marker == {"pid": server.process.pid, "port": server.port, "token": server.token,
                          "warehouse": str(pipeline.warehouse.resolve())}
        assert (pipeline.home / "server.json").stat().st_mode & 0o077 == 0  # the token is the user's only
        assert pipelines.run_pipeline(pipeline, "dry-run", keep_server=True).events == first.events  # same server
        assert pipelines.run_pipeline(pipeline).events == first.events  # any run uses a kept server
        assert pipelines._SERVERS == {pipeline.home: server}
    finally:
        pipelines.stop_servers()
    assert server.process.returncode == 0 and "stopped" in server.log.read_text()
    assert not (pipeline.home / "server.json").exists() and pipelines._SERVERS == {}
    assert pipelines.run_pipeline(pipeline).events == ["remote local token None"]  # none left: a server of its own


def test_another_processes_kept_server_is_used_while_it_serves(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os
    import subprocess

    pipeline = _fake_run(monkeypatch, tmp_path, REPORTING_CLIENT)
    host = _fake_server(monkeypatch, tmp_path)
    pipelines.write_conf_dir(pipeline, [], port := pipelines.free_port())
    other = subprocess.Popen([sys.executable, str(host), str(pipeline.home / "other.json")], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, cwd=pipeline.spec.parent, text=True)
    try:
        assert other.stdout is not None
        assert "MEDILAKE-SERVER-READY" in other.stdout.readline() + other.stdout.readline()
        record = {"pid": other.pid, "port": port, "token": "t", "warehouse": str(pipeline.warehouse.resolve())}
        (pipeline.home / "server.json").write_text(json.dumps(record))
        assert pipelines.running_server(pipeline) == (port, "t")
        assert pipelines.run_pipeline(pipeline).events == [f"remote sc://localhost:{port} token t"]
        assert pipelines._SERVERS == {}, "another process's server: not this one's to stop"
        copied = pipelines.load_pipeline(pipeline.spec, tmp_path / "copy")  # its record, copied along
        copied.home.mkdir(parents=True)
        (copied.home / "server.json").write_text(json.dumps(record))
        assert pipelines.running_server(copied) is None  # the original warehouse's server: never used here
        (pipeline.home / "server.json").write_text(json.dumps({**record, "pid": os.getpid()}))
        assert pipelines.running_server(pipeline) is None  # a live pid, but not a server host (reused pid)
        (pipeline.home / "server.json").write_text(json.dumps(record))
    finally:
        other.communicate("", timeout=30)
    assert pipelines.running_server(pipeline) is None  # it ended: a stale record
    (pipeline.home / "server.json").write_text("{not json")
    assert pipelines.running_server(pipeline) is None


def test_a_kept_server_whose_folder_was_moved_aside_is_replaced(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    """`reset`/`catchup` move volumes/pipelines aside, the record with it: the next run must not send
    its work to a server whose metastore moved."""
    import shutil

    pipeline = _fake_run(monkeypatch, tmp_path, REPORTING_CLIENT)
    _fake_server(monkeypatch, tmp_path)
    try:
        pipelines.run_pipeline(pipeline, keep_server=True)
        first = pipelines._SERVERS[pipeline.home]
        shutil.move(pipeline.home, tmp_path / "backup")
        pipeline.home.mkdir(parents=True)
        pipelines.run_pipeline(pipeline, keep_server=True)
        second = pipelines._SERVERS[pipeline.home]
        assert second.port != first.port and not first.alive() and second.alive()
    finally:
        pipelines.stop_servers()


def test_one_run_at_a_time_per_pipeline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import fcntl

    pipeline = _fake_run(monkeypatch, tmp_path, REPORTING_CLIENT)
    pipeline.home.mkdir(parents=True)
    with (pipeline.home / "run.lock").open("a+") as held:  # as another process's run holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(UsageError, match="another run of pipeline 'demo' is in progress"):
            pipelines.run_pipeline(pipeline)
    assert pipelines.run_pipeline(pipeline).events == ["remote local token None"]


def test_a_server_that_cannot_start_is_a_pipeline_error_naming_its_log(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    pipeline = _fake_run(monkeypatch, tmp_path, REPORTING_CLIENT)
    _fake_server(monkeypatch, tmp_path, """
        import sys
        print("Traceback (most recent call last): ...")
        print("MEDILAKE-ERROR: PySparkRuntimeError: [JAVA_GATEWAY_EXITED] Java gateway process exited.")
        sys.exit(1)
    """)
    with pytest.raises(PipelineError) as raised:
        pipelines.run_pipeline(pipeline, keep_server=True)
    assert "server start failed: PySparkRuntimeError: [JAVA_GATEWAY_EXITED]" in str(raised.value)
    assert "Traceback" in Path(raised.value.log).read_text() and pipelines._SERVERS == {}


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


# ------------------------------------------------------------------ the event log's rows

def test_sql_definitions_name_datasets_kinds_comments_and_flows() -> None:
    sql = """-- a comment; with a semicolon
    CREATE MATERIALIZED VIEW gold.a COMMENT 'it''s a' AS SELECT * FROM silver.b;
    CREATE OR REFRESH STREAMING TABLE `bronze`.`c`;
    CREATE FLOW c_backfill AS INSERT INTO bronze.c BY NAME SELECT * FROM STREAM(bronze.d);
    CREATE TEMPORARY VIEW v AS SELECT 1;
    """
    datasets, flows = event_log.sql_definitions(sql, "transformations/x.sql")
    assert datasets == [event_log.Dataset("gold.a", "MATERIALIZED_VIEW", "it's a", "transformations/x.sql"),
                        event_log.Dataset("bronze.c", "STREAMING_TABLE", None, "transformations/x.sql"),
                        event_log.Dataset("v", "VIEW", None, "transformations/x.sql")]
    assert [(f.name, f.target) for f in flows] == [("gold.a", "gold.a"), ("c_backfill", "bronze.c"), ("v", "v")]
    assert event_log.input_datasets(flows[0], ["gold.a", "silver.b", "silver.b_old"]) == ["silver.b"]
    assert event_log.input_datasets(flows[1], ["bronze.c", "bronze.d", "bronze.dd"]) == ["bronze.d"]


def _update() -> event_log.Update:
    from datetime import datetime

    rules = [expectations.Expectation("well_formed", "_corrupt_record IS NULL", "drop"),
             expectations.Expectation("plausible", "lo <= hi", "warn"),
             expectations.Expectation("known_op", "op IN ('I', 'U', 'D')", "fail")]
    update = event_log.Update("p", "/x/spark-pipeline.yml", ["transformations/**"], False, datetime(2026, 12, 2, 10))
    update.datasets += [event_log.Dataset("bronze.t", "STREAMING_TABLE"), event_log.Dataset("changes", "VIEW"),
                        event_log.Dataset("silver.t", "MATERIALIZED_VIEW")]
    update.flows += [event_log.Flow("bronze.t", "bronze.t", 'unparsed_identifier: "landing"'),
                     event_log.Flow("changes", "changes", 'query: "SELECT * FROM bronze.t"', rules),
                     event_log.Flow("silver.t", "silver.t", "SELECT * FROM changes")]
    return update


def test_an_update_writes_lakeflows_event_types_in_order_with_their_details() -> None:
    from datetime import datetime

    update = _update()
    counts = {"changes": expectations.Counts(100, {"well_formed": 3, "plausible": 5, "known_op": 0}, 3)}
    rows = update.events(datetime(2026, 12, 2, 10, 5), "COMPLETED", counts, seconds=61.5)
    assert [r["event_type"] for r in rows] == ["create_update", *["dataset_definition"] * 3,
                                               *["flow_definition"] * 3, "flow_progress", "update_progress"]
    assert {r["origin"]["update_id"] for r in rows} == {update.update_id}
    assert all(set(r) == {"id", "timestamp", "event_type", "level", "message", "origin", "details"} for r in rows)
    details = [json.loads(r["details"])[r["event_type"]] for r in rows]
    assert details[0] == {"cause": "USER_ACTION", "full_refresh": False, "spec_path": "/x/spark-pipeline.yml",
                          "libraries": ["transformations/**"]}
    assert [d["dataset_type"] for d in details[1:4]] == ["STREAMING_TABLE", "VIEW", "MATERIALIZED_VIEW"]
    assert [(d["flow_type"], d["input_datasets"]) for d in details[4:7]] == [
        ("APPEND", []), ("COMPLETE", ["bronze.t"]), ("COMPLETE", ["changes"])]
    assert [(e["name"], e["action"]) for e in details[5]["expectations"]] == [
        ("well_formed", "DROP"), ("plausible", "WARN"), ("known_op", "FAIL")]
    assert rows[7]["origin"]["flow_name"] == "changes"
    assert details[7] == {"status": "COMPLETED", "data_quality": {"dropped_records": 3, "expectations": [
        {"name": "well_formed", "dataset": "changes", "passed_records": 97, "failed_records": 3},
        {"name": "plausible", "dataset": "changes", "passed_records": 95, "failed_records": 5},
        {"name": "known_op", "dataset": "changes", "passed_records": 100, "failed_records": 0}]}}
    assert details[8] == {"state": "COMPLETED", "seconds": 61.5}


def test_a_failed_update_marks_the_flow_a_fail_rule_stopped() -> None:
    from datetime import datetime

    counts = {"changes": expectations.Counts(10, {"well_formed": 0, "plausible": 0, "known_op": 2}, 0)}
    rows = _update().events(datetime(2026, 12, 2, 10, 5), "FAILED", counts, failed_flows=["changes"])
    progress = json.loads(rows[-2]["details"])["flow_progress"]
    assert (progress["status"], rows[-2]["level"]) == ("FAILED", "ERROR")
    assert progress["data_quality"]["expectations"][2]["failed_records"] == 2
    assert json.loads(rows[-1]["details"])["update_progress"]["state"] == "FAILED"


# ------------------------------------------------------------------ the learner's copy of the project

def test_learner_project_files_get_todo_stubs_that_fail_loudly() -> None:
    from medilake_lab.course.scaffold import learner_project_file

    py = "x = 1\n    # BEGIN SOLUTION read the feed\n    return spark.read.table('a')\n    # END SOLUTION\ny = 2\n"
    assert learner_project_file(py) == ("x = 1\n    # TODO: read the feed\n"
                                        "    raise NotImplementedError(\"TODO: read the feed\")\ny = 2\n")
    sql = "CREATE MATERIALIZED VIEW g AS\n-- BEGIN SOLUTION count per class\nSELECT 1\n-- END SOLUTION\n;\n"
    assert learner_project_file(sql) == ("CREATE MATERIALIZED VIEW g AS\n-- TODO: count per class\n"
                                         "SELECT * FROM TODO_your_query_here\n;\n")
    from medilake_lab.errors import NotebookError

    with pytest.raises(NotebookError, match="p/x.sql: a BEGIN SOLUTION without its END"):
        learner_project_file("-- BEGIN SOLUTION\nSELECT 1\n", "p/x.sql")


def test_the_learner_project_is_up_to_date_and_has_todos_in_every_definitions_file() -> None:
    from medilake_lab.course.scaffold import build_learner_projects

    assert build_learner_projects(write=False) == [], "run `medilake_lab dev build-labs`"
    learner = config.project_root() / "labs" / SOLUTION.name
    sources = sorted((learner / "transformations").iterdir())
    assert [p.name for p in sources] == sorted(p.name for p in (SOLUTION / "transformations").iterdir())
    assert all("TODO:" in p.read_text() and "SOLUTION" not in p.read_text() for p in sources)


def test_a_pipeline_refuses_a_copied_warehouse(tmp_path: Path) -> None:
    import shutil

    pipeline = pipelines.load_pipeline(_project(tmp_path / "p"), tmp_path / "wh")
    pipelines.check_metastore(pipeline)
    pipelines.check_metastore(pipeline)  # the same warehouse again: fine
    shutil.copytree(tmp_path / "wh", tmp_path / "copy")
    copy = pipelines.load_pipeline(tmp_path / "p", tmp_path / "copy")
    with pytest.raises(UsageError, match="belongs to the warehouse") as raised:
        pipelines.check_metastore(copy)
    assert str(tmp_path / "wh") in str(raised.value) and str(tmp_path / "copy") in str(raised.value)
