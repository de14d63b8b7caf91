"""Lab 04 grader on small fixture tables, no JVM: gold tables built on the fast silver warehouse with
the notebook's refresh patterns (:mod:`fast.analytics`) pass every check, and each realistic wrong
answer (the mistakes of tests/gold_variants.py and tests/test_lab04.py, and a few more) fails the
right check with a finding that names the table, the column and what was observed; the reference's
clinical definitions hold on hand-made silver rows."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from fast import analytics as gold
from fast.conftest import copy_of
from fast.grading import Wrong, assert_all_pass, assert_wrong
from medilake_lab import grader
from medilake_lab.contract.labs import get_lab
from medilake_lab.grader.reference import gold as ref

LAB = "04"
SUMMARY = "gold.patient_clinical_summary"
UTILIZATION = "gold.hospital_utilization_metrics"
PREVALENCE = "gold.disease_prevalence_daily"


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
    Wrong("prevalence_truncated", gold.prevalence_truncated,
          {"refresh_pattern": (PREVALENCE, "TRUNCATE", "full overwrite")}),
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


# ------------------------------------------- the clinical definitions, on hand-made silver rows


def _ts(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00")


_TYPES = {"admit_ts": pa.timestamp("us"), "discharge_ts": pa.timestamp("us"),
          "result_ts": pa.timestamp("us"), "birth_date": pa.date32(), "onset_date": pa.date32(),
          "resolved_date": pa.date32(), "start_date": pa.date32(), "end_date": pa.date32(),
          "is_current": pa.bool_(), "is_chronic": pa.bool_(), "value": pa.float64(),
          "ref_low": pa.float64(), "ref_high": pa.float64()}


def _silver(encounters: list[dict]) -> ref.Silver:
    """Silver inputs with only these encounters (every other table empty), as of 2025-03-31."""
    tables = {name: pa.table({c: pa.array([r.get(c) for r in
                                           (encounters if name.endswith("encounters_clean")
                                            else [])], _TYPES.get(c, pa.string()))
                              for c in cols})
              for name, cols in ref.SILVER_COLUMNS.items()}
    return ref.Silver(tables, date(2025, 3, 31))


def _stay(eid: str, admit: str, discharge: str, *, patient: str = "P1", kind: str = "urgent",
          disposition: str = "home", cls: str = "inpatient") -> dict:
    return {"encounter_id": eid, "patient_id": patient, "encounter_class": cls,
            "admission_type": kind, "admit_ts": _ts(admit), "discharge_ts": _ts(discharge, 15),
            "facility_id": "F1", "facility_name": "Hospital", "discharge_disposition": disposition}


def test_readmission_definition_edges() -> None:
    silver = _silver([
        _stay("E1", "2025-01-01", "2025-01-03"),                       # index, readmitted day 30
        _stay("E2", "2025-02-02", "2025-02-04"),                       # day 30 after E1 → readmit
        _stay("E3", "2025-01-05", "2025-01-06", patient="P2"),         # index, next at day 31
        _stay("E4", "2025-02-06", "2025-02-07", patient="P2"),         # day 31 → not a readmission
        _stay("E5", "2025-01-10", "2025-01-11", patient="P3", disposition="transfer"),  # no index
        _stay("E6", "2025-01-12", "2025-01-15", patient="P3"),
        _stay("E7", "2025-01-10", "2025-01-11", patient="P4", disposition="expired"),  # no index
        _stay("E8", "2025-01-20", "2025-01-21", patient="P5"),         # index, only elective after
        _stay("E9", "2025-01-25", "2025-01-26", patient="P5", kind="elective"),
        _stay("E10", "2025-01-28", "2025-01-28", patient="P6"),        # index, ED visit after
        _stay("E11", "2025-01-29", "2025-01-29", patient="P6", cls="emergency"),
    ])
    idx = {r["encounter_id"]: r["readmitted"] for r in ref.index_stays(silver).to_pylist()}
    assert "E5" not in idx and "E7" not in idx
    assert idx["E1"] is True and idx["E3"] is False and idx["E8"] is False and idx["E10"] is False
    with31 = {r["encounter_id"]: r["readmitted"]
              for r in ref.index_stays(silver, window_days=31).to_pylist()}
    assert with31["E3"] is True
    assert "E5" in {r["encounter_id"] for r in
                    ref.index_stays(silver, transfers_are_index=True).to_pylist()}


def test_utilization_grid_and_los_in_days() -> None:
    silver = _silver([_stay("E1", "2025-01-01", "2025-01-03"),
                      _stay("E2", "2025-01-31", "2025-02-01", patient="P2"),
                      _stay("E3", "2025-03-30", "2025-03-30", patient="P3", cls="emergency")])
    rows = {r["month_start"]: r for r in ref.utilization(silver).to_pylist()}
    assert list(rows) == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
    jan, feb, mar = rows.values()
    assert (jan["admissions"], jan["discharges"], jan["inpatient_days"]) == (2, 1, 2)
    assert (feb["discharges"], feb["mean_los_days"], feb["median_los_days"]) == (1, 1.0, 1.0)
    assert (mar["admissions"], mar["ed_visits"], mar["mean_los_days"]) == (0, 1, None)
    assert mar["readmission_rate"] is None and jan["index_stays"] == 1
