"""One kernel for several notebooks (``medilake_lab run all``, ``catchup``, the test suite): the
second notebook runs on the first one's warm JVM but finds nothing else the first left behind."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from medilake_lab.course.notebooks import NotebookError, WarmKernel, execute_notebook

pytestmark = [pytest.mark.spark, pytest.mark.notebooks]

PARAMETERS = nbformat.v4.new_code_cell("warehouse = None", metadata={"tags": ["parameters"]})

#: The first notebook leaves behind all a notebook can: a variable, a SQL setting, a temporary view,
#: a streaming query committing every second, and a Delta table in the warehouse (which the second must see).
FIRST = """
from medilake_lab import get_spark
spark = get_spark(warehouse)
spark.conf.set("spark.sql.shuffle.partitions", "7")
spark.range(3).createOrReplaceTempView("leftover_view")
stream = (spark.readStream.format("rate").option("rowsPerSecond", 1).load().writeStream.format("delta")
          .option("checkpointLocation", warehouse + "/_checkpoint").trigger(processingTime="1 second")
          .start(warehouse + "/stream_sink"))
import time
from pathlib import Path
while not list(Path(warehouse, "stream_sink", "_delta_log").glob("*.json")):  # its first commit
    time.sleep(0.2)
spark.range(5).write.format("delta").save(warehouse + "/bronze/kept")
left_by_first = {"app": spark.sparkContext.applicationId, "streams": len(spark.streams.active)}
"""

SECOND = """
import json, time
from pathlib import Path
from medilake_lab import get_spark
spark = get_spark(warehouse)
commits = lambda: len(list(Path(warehouse, "stream_sink", "_delta_log").glob("*.json")))
before = commits()
time.sleep(3)  # the first notebook's stream commits every second while it runs
Path(warehouse, "seen.json").write_text(json.dumps({
    "variable_left": "left_by_first" in globals(),
    "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
    "view_left": spark.catalog.tableExists("leftover_view"),
    "streams": len(spark.streams.active),
    "stream_commits_meanwhile": commits() - before,
    "app": spark.sparkContext.applicationId,
    "kept_rows": spark.table("bronze.kept").count(),
}))
"""


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[PARAMETERS, *(nbformat.v4.new_code_cell(s) for s in sources)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_second_notebook_gets_a_fresh_session_on_the_warm_jvm(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    first = _notebook(tmp_path / "first.ipynb", FIRST,
                      'from pathlib import Path; Path(warehouse, "first_app.txt").write_text(left_by_first["app"])')
    second = _notebook(tmp_path / "second.ipynb", SECOND)
    params = {"warehouse": str(warehouse)}
    with WarmKernel(tmp_path) as kernel:
        execute_notebook(first, tmp_path / "out" / first.name, params, progress=False, kernel=kernel)
        execute_notebook(second, tmp_path / "out" / second.name, params, progress=False, kernel=kernel)
    seen = json.loads((warehouse / "seen.json").read_text())
    assert seen["app"] == (warehouse / "first_app.txt").read_text(), "the JVM was not kept"
    assert seen == {"variable_left": False, "shuffle_partitions": "4", "view_left": False, "streams": 0,
                    "stream_commits_meanwhile": 0, "app": seen["app"], "kept_rows": 5}


def test_a_failing_notebook_in_a_shared_kernel_names_itself(tmp_path: Path) -> None:
    ok = _notebook(tmp_path / "ok.ipynb", "x = 1")
    broken = _notebook(tmp_path / "broken.ipynb", "assert 'x' not in globals()", "1 / 0")
    with WarmKernel(tmp_path) as kernel:
        execute_notebook(ok, tmp_path / "out" / ok.name, {}, progress=False, kernel=kernel)
        with pytest.raises(NotebookError, match=r"broken\.ipynb: cell 3 of 3 \(1 / 0\) raised ZeroDivisionError"):
            execute_notebook(broken, tmp_path / "out" / broken.name, {}, progress=False, kernel=kernel)
