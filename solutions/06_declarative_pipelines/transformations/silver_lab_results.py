# ruff: noqa: F821 - `spark` is the session spark-pipelines puts into this file's globals
"""Silver lab results: every expectation action on the change rows, then the newest version per result.

``lab_result_changes`` (a temporary view) declares the rules: lab 02's quarantine rules drop
(``expect_or_drop``), an implausible reference range is only counted (``expect``: the row is
kept), and an unknown operation stops the update (``expect_or_fail``: the feed is broken, do not
publish anything). ``silver.lab_results_dp`` keeps the newest valid version of each result.
"""

from pyspark import pipelines as dp

from medilake_lab.contract import codes, feeds
from medilake_lab.runtime.expectations import expect_all, expect_all_or_drop, expect_all_or_fail

REQUIRED = feeds.FEEDS["lab_results"].required  # lab_result_id, patient_id, loinc_code, value, …
LOINC = ", ".join(f"'{code}'" for code in sorted(codes.CODE_TABLES["LOINC"]))
# A malformed line has no trustworthy fields: well_formed counts it, the other rules judge parsed lines only.
# BEGIN SOLUTION DROP_RULES: well_formed, required_fields, valid_loinc_code; WARN_RULES and FAIL_RULES: one rule each
DROP_RULES = {  # lab 02's quarantine rules
    "well_formed": "_corrupt_record IS NULL",
    "required_fields": "_corrupt_record IS NOT NULL OR (" + " AND ".join(f"{c} IS NOT NULL" for c in REQUIRED) + ")",
    "valid_loinc_code": f"_corrupt_record IS NOT NULL OR loinc_code IS NULL OR loinc_code IN ({LOINC})",
}
WARN_RULES = {"plausible_reference_range": "_corrupt_record IS NOT NULL OR ref_low <= ref_high"}
FAIL_RULES = {"known_operation": "op IS NULL OR op IN ('I', 'U', 'D')"}  # a missing op is required_fields' business
# END SOLUTION


@dp.temporary_view(name="lab_result_changes", comment="bronze lab result lines that pass lab 02's rules")
@expect_all(WARN_RULES)  # kept, counted
@expect_all_or_fail(FAIL_RULES)  # the update stops
@expect_all_or_drop(DROP_RULES)  # dropped, counted
def lab_result_changes():
    return spark.read.table("bronze.lab_results_dp")


@dp.materialized_view(name="silver.lab_results_dp", comment="newest valid version of each lab result")
def lab_results():
    # BEGIN SOLUTION newest change per lab_result_id by updated_at, deletes applied, plus abnormal_flag H/L/N
    return spark.sql("""
        SELECT lab_result_id, encounter_id, patient_id, loinc_code, test_name, value, unit, ref_low, ref_high,
               result_ts, updated_at,
               CASE WHEN ref_high IS NOT NULL AND value > ref_high THEN 'H'
                    WHEN ref_low IS NOT NULL AND value < ref_low THEN 'L'
                    WHEN ref_low IS NULL OR ref_high IS NULL THEN NULL ELSE 'N' END AS abnormal_flag
        FROM (SELECT *, row_number() OVER (PARTITION BY lab_result_id ORDER BY updated_at DESC, _batch_id) AS _rn
              FROM lab_result_changes)
        WHERE _rn = 1 AND op <> 'D'
    """)
    # END SOLUTION
