"""Lab 04 grader on small fixture tables, no JVM: gold tables built on the fast silver warehouse with
the notebook's refresh patterns (:mod:`fast.analytics`) pass every check, and each realistic wrong
answer (the mistakes of tests/gold_variants.py and tests/test_lab04.py, and a few more) fails the
right check with a finding that names the table, the column and what was observed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fast import analytics as gold
from fast.conftest import copy_of
from fast.grading import Wrong, assert_all_pass, assert_wrong
from medilake_lab import grader
from medilake_lab.contract.labs import get_lab

LAB = "04"
SUMMARY = "gold.patient_clinical_summary"
UTILIZATION = "gold.hospital_utilization_metrics"


@pytest.fixture(scope="session")
def gold_warehouse(silver_warehouse: Path, tmp_path_factory: pytest.TempPathFactory, fast_data: Path) -> Path:
    """Lab 04 solved on the fast silver warehouse. Read-only (copy it)."""
    warehouse = Path(shutil.copytree(silver_warehouse, tmp_path_factory.mktemp("fast-gold") / "wh"))
    gold.solve(warehouse, fast_data)
    return warehouse


WRONG_ANSWERS = [
    Wrong("los_in_hours", gold.los_in_hours,
          {"utilization_values": (f"{UTILIZATION}: inpatient_days differs", "mean_los_days differs",
                                  "observed", "hours, not days")},
          passes=("readmissions", "refresh_pattern", "grain")),
    Wrong("readmission_window_31_days", gold.readmission_window_31,
          {"readmissions": (f"{UTILIZATION}: readmissions_30d differs", "31-day window")},
          passes=("utilization_values", "refresh_pattern")),
    Wrong("transfers_counted_as_index_stays", gold.transfers_counted,
          {"readmissions": ("index_stays differs", "counting transfers as index stays")},
          passes=("utilization_values",)),
    Wrong("prevalence_counts_encounters", gold.prevalence_by_encounters,
          {"prevalence_values": ("gold.disease_prevalence_daily: patients differs", "count(DISTINCT patient_id)")},
          passes=("grain", "refresh_pattern", "columns")),
    Wrong("ssn_and_name_columns", gold.ssn_and_names,
          {"no_identifiers": (f"{SUMMARY}.ssn: the name marks a direct identifier (SSN)",
                              f"{SUMMARY}.first_name: the name marks a direct identifier (patient name)")},
          passes=("summary_values", "columns")),
    Wrong("identifiers_under_innocent_names", gold.names_under_other_names,
          {"no_identifiers": ("analyst_label holds patient name values", "ref_code holds SSN-like values")},
          passes=("summary_values",)),
    Wrong("birth_date_kept", gold.birth_date_kept,
          {"no_identifiers": (f"{SUMMARY}.index_date equals the patient's birth date",)},
          passes=("summary_values",)),
    Wrong("chronic_conditions_as_text", gold.chronic_conditions_as_text,
          {"columns": (f"{SUMMARY}: chronic_conditions is string, expected list<string>",)},
          passes=("no_identifiers", "refresh_pattern")),
    Wrong("summary_inner_join", gold.summary_inner_join,
          {"summary_values": (f"{SUMMARY}:", "expected row(s) missing")},
          passes=("grain", "columns")),
    Wrong("summary_merged_instead_of_replaced", gold.summary_merged,
          {"refresh_pattern": (SUMMARY, "MERGE", "full overwrite")},
          passes=("summary_values",)),
    Wrong("rolling_rate_over_rows", gold.lab_trends_rows_frame,
          {"lab_trend_values": ("gold.lab_abnormal_trends: rolling_7d_tests differs", "RANGE frame")},
          passes=("grain", "refresh_pattern")),
    Wrong("utilization_appended", gold.utilization_appended,
          {"refresh_pattern": ("WRITE (mode=Append) after the first MERGE",),
           "grain": ("duplicate facility_id/month_start",)},
          passes=("no_identifiers",)),
    Wrong("utilization_overwritten", gold.utilization_overwritten,
          {"refresh_pattern": (UTILIZATION, "WRITE (mode=Overwrite) after the first MERGE")},
          passes=("utilization_values", "readmissions")),
    Wrong("lab_trends_missing", gold.lab_trends_missing,
          {"tables_exist": ("gold.lab_abnormal_trends", "run lab 04")}),
    Wrong("silver_diagnoses_missing", gold.silver_diagnoses_missing,
          {"summary_values": ("silver.diagnoses_clean is missing",)},
          passes=("grain", "refresh_pattern")),
]


def test_solution_passes_every_check(gold_warehouse: Path, fast_data: Path) -> None:
    assert_all_pass(grader.grade(LAB, gold_warehouse, fast_data), [c.id for c in get_lab(LAB).checks])


@pytest.mark.parametrize("wrong", WRONG_ANSWERS, ids=lambda w: w.name)
def test_wrong_answer_fails_the_right_check(wrong: Wrong, gold_warehouse: Path, fast_data: Path,
                                            tmp_path: Path) -> None:
    warehouse = copy_of(gold_warehouse, tmp_path)
    wrong.build(warehouse, fast_data)
    assert_wrong(grader.grade(LAB, warehouse, fast_data), wrong, fast_data)
