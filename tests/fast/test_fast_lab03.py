"""Lab 03 grader on small fixture tables, no JVM: the layout the solution leaves (rebuilt with
delta-rs in Spark's commit shapes, :mod:`fast.layout`) passes every check, and each realistic wrong
answer (the mistakes of tests/optimization_variants.py, and a few more) fails the right check
with a finding that names the table and what was observed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from fast import layout
from fast.conftest import copy_of
from fast.grading import Wrong, assert_all_pass, assert_wrong, results
from medilake_lab import grader
from medilake_lab.contract.labs import get_lab
from medilake_lab.grader import Status
from medilake_lab.grader.lab03 import MAX_LOOKUP_SHARE, lookup_share, partition_restrictions

LAB = "03"


@pytest.fixture(scope="session")
def layout_warehouse(silver_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Labs 01–03 solved: the silver warehouse after lab 03's solution. Read-only (copy it)."""
    warehouse = Path(shutil.copytree(silver_warehouse, tmp_path_factory.mktemp("fast-layout") / "wh"))
    layout.solve(warehouse)
    return warehouse


WRONG_ANSWERS = [
    Wrong("no_optimize", layout.no_optimize,
          {"optimize": ("silver.lab_results_clean: no OPTIMIZE since", "small files remain"),
           "zorder": ("silver.lab_results_clean: no OPTIMIZE … ZORDER BY",),
           "pruned_merge": ("no MERGE into silver.lab_results_clean since",)},
          passes=("partitioning", "restore", "vacuum")),
    Wrong("zorder_by_loinc_code", layout.zorder_by_loinc,
          {"zorder": ("ZORDER BY (loinc_code): patient lookups need patient_id",),
           "data_skipping": ("silver.lab_results_clean", f"at most {MAX_LOOKUP_SHARE:.0%} expected")},
          passes=("optimize", "partitioning")),
    Wrong("partitioned_by_patient_id", layout.partition_by_patient,
          {"partitioning": ("silver.lab_results_clean is partitioned by patient_id, an identifier",
                            "rows per partition")},
          passes=("tables_exist",)),
    Wrong("encounters_partitioned_by_day", layout.encounters_by_day,
          {"partitioning": ("silver.encounters_clean is over-partitioned by admit_date",
                            "calendar months of admit_ts")},
          passes=("zorder", "data_skipping")),
    Wrong("production_vacuum_retain_0", layout.unsafe_vacuum,
          {"vacuum": ("silver.lab_results_clean", "retention 0 h, retention check disabled")},
          passes=("vacuum_sandbox", "restore")),
    Wrong("merge_without_partition_predicate", layout.unpruned_merge,
          {"pruned_merge": ("has no literal condition on partition column result_month", "it searched all")},
          passes=("zorder",)),
    Wrong("restore_to_wrong_version", layout.restore_wrong_version,
          {"restore": ("went back past the pre-incident version", "MERGE")}),
    Wrong("sandbox_vacuumed_before_any_change", layout.sandbox_unchanged,
          {"vacuum_sandbox": ("sandbox.lab_results_vacuum_demo", "every older version is still readable")},
          passes=("vacuum",)),
    Wrong("encounters_missing", layout.encounters_missing,
          {"tables_exist": ("silver.encounters_clean", "finish lab 02")}),
]


def test_solution_passes_every_check(layout_warehouse: Path, fast_data: Path) -> None:
    report = grader.grade(LAB, layout_warehouse, fast_data)
    assert_all_pass(report, [c.id for c in get_lab(LAB).checks])
    found = results(report)
    assert "ZORDER BY (patient_id)" in found["zorder"][1]
    assert "pruned by result_month" in found["pruned_merge"][1]


@pytest.mark.parametrize("wrong", WRONG_ANSWERS, ids=lambda w: w.name)
def test_wrong_answer_fails_the_right_check(wrong: Wrong, layout_warehouse: Path, fast_data: Path,
                                            tmp_path: Path) -> None:
    warehouse = copy_of(layout_warehouse, tmp_path)
    wrong.build(warehouse, fast_data)
    assert_wrong(grader.grade(LAB, warehouse, fast_data), wrong, fast_data)


def test_untouched_learner_notebook_fails(silver_warehouse: Path, fast_data: Path) -> None:
    """Lab 02's tables as they are (the learner's lab 03 notebook stopped at its first TODO)."""
    found = results(grader.grade(LAB, silver_warehouse, fast_data))
    assert found["tables_exist"][0] is Status.PASS
    assert "silver.lab_results_clean is not partitioned" in found["partitioning"][1]
    assert "sandbox.lab_results_vacuum_demo" in found["vacuum_sandbox"][1]
    assert "run lab 03" in found["vacuum_sandbox"][1]
    assert "no RESTORE in silver.lab_results_clean history" in found["restore"][1]
    assert {check: status for check, (status, _) in found.items() if status is Status.PASS} == {
        "tables_exist": Status.PASS}


# ------------------------------------------------------------------ evidence helpers

def test_partition_restrictions_read_literals_only() -> None:
    pruned = '["((lab_result_id#1 = lab_result_id#2) AND result_month#3 IN (2025-08-01,2025-09-01))"]'
    assert partition_restrictions(pruned, "result_month") == [("in", ["2025-08-01", "2025-09-01"])]
    ranged = '["((id#1 = id#2) AND (result_month#3 >= 2025-08-01))"]'
    assert partition_restrictions(ranged, "result_month") == [(">=", ["2025-08-01"])]
    joined = '["((id#1 = id#2) AND (result_month#3 = result_month#4))"]'
    assert partition_restrictions(joined, "result_month") == []
    assert partition_restrictions('["(id#1 = id#2)"]', "result_month") == []


def test_lookup_share_counts_files_whose_range_can_hold_the_key() -> None:
    files = pa.table({"min.patient_id": ["PAT001", "PAT004", None],
                      "max.patient_id": ["PAT003", "PAT009", None]})
    assert lookup_share(files, ["PAT002"]) == pytest.approx(2 / 3)  # first file + no stats
    assert lookup_share(files, ["PAT002", "PAT005"]) == pytest.approx(2 / 3)
    assert lookup_share(files, []) == 1.0
