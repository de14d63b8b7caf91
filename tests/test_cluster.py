"""The same labs on a cluster (issue 20): lab 01's solution notebook, unchanged, runs on a localhost
Spark standalone cluster (a master and two workers started with pyspark's ``spark-class``), chosen
with the documented setting ``MEDILAKE_SPARK_MASTER``, and passes every check; the master's and the
workers' ``/json`` state and the executors' logs show that its tasks ran on the workers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from medilake_lab import grader
from medilake_lab.contract.labs import get_lab
from medilake_lab.course.notebooks import execute_notebook, solutions_dir
from medilake_lab.errors import UsageError
from medilake_lab.grader import Status
from medilake_lab.runtime import cluster as cluster_module
from medilake_lab.runtime import config
from medilake_lab.runtime.cluster import LocalCluster, local_cluster


def test_spark_master_defaults_to_local_and_follows_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.SPARK_MASTER_ENV, raising=False)
    assert config.spark_master() == config.DEFAULT_SPARK_MASTER == "local[2]"
    monkeypatch.setenv(config.SPARK_MASTER_ENV, " spark://10.0.0.5:7077 ")
    assert config.spark_master() == "spark://10.0.0.5:7077"


def test_spark_connect_address_in_the_master_setting_says_use_spark_remote(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.SPARK_MASTER_ENV, "sc://localhost:15002")
    with pytest.raises(UsageError, match="SPARK_REMOTE=sc://localhost:15002"):
        config.spark_master()


@pytest.mark.spark
@pytest.mark.notebooks
@pytest.mark.cluster
def test_lab01_solution_on_a_standalone_cluster_passes_every_check(
        tmp_path: Path, bundled_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, warehouse = get_lab("01"), tmp_path / "warehouse"
    with local_cluster(tmp_path / "cluster", workers=2, cores=1) as cluster:
        for key, value in cluster.env().items():
            monkeypatch.setenv(key, value)  # the notebook's kernel inherits them
        execute_notebook(solutions_dir() / spec.notebook, tmp_path / "executed" / spec.notebook,
                         {"warehouse": str(warehouse), "data_dir": str(bundled_data)}, progress=False)
        master = cluster.master_state()
        workers = cluster.worker_states()

    apps = master["activeapps"] + master["completedapps"]
    assert [(app["name"], app["cores"]) for app in apps] == [("medilake-lab", 2)], apps
    app_id = apps[0]["id"]
    ran = {w["id"]: [e["id"] for e in w["executors"] + w["finishedexecutors"] if e["appid"] == app_id]
           for w in workers}
    # each worker ran an executor of the app (a loaded machine may relaunch one: more is fine)
    assert len(ran) == 2 and all(ran.values()), ran
    logs = sorted((tmp_path / "cluster" / "work").glob(f"worker-*/{app_id}/*/stderr"))
    worked = {log.parents[2].name for log in logs if "Finished task" in log.read_text()}
    assert len(worked) == 2, logs   # tasks finished on both workers

    report = grader.grade("01", warehouse, bundled_data)
    failures = [(r.id, r.finding) for r in report.results if r.status is not Status.PASS]
    assert failures == []
    assert report.ok and report.total == len(spec.checks)


def test_waiting_for_workers_rides_out_a_web_ui_that_still_serves_html(tmp_path: Path) -> None:
    """A starting master answers ``/json/`` with its HTML page for a moment (seen in CI): the wait
    treats that as "not up yet" and returns once the JSON says the workers are ALIVE."""
    answers = [("text/html", b"<!DOCTYPE html><html></html>")] * 2 + [
        ("text/json", json.dumps({"workers": [{"state": "ALIVE"}, {"state": "ALIVE"}]}).encode())]
    served: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            kind, body = answers[min(len(served), len(answers) - 1)]
            served.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", f"{kind};charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        cluster = LocalCluster("spark://127.0.0.1:1", f"http://127.0.0.1:{server.server_port}", tmp_path)
        with pytest.raises(ValueError, match="text/html, not JSON"):
            cluster.master_state()
        cluster_module._wait_for_workers(cluster, workers=2, timeout=10)
        server.shutdown()
    assert served == ["/json/"] * 3
