# ruff: noqa: F821 - `spark` is the session spark-pipelines puts into this file's globals
"""Silver lab results: the newest valid version of each result, with every expectation action.

The query returns the candidate rows (per lab_result_id the newest change unless it is a delete,
plus every line without a key); the rules then act on them: lab 02's quarantine rules drop
(``expect_or_drop``), an implausible reference range is only counted (``expect``: the row is
kept), and an unknown operation stops the update (``expect_or_fail``: the feed is broken, publish
nothing).
"""

from pyspark import pipelines as dp

from medilake_lab.contract import codes, feeds
from medilake_lab.runtime.expectations import expect_all, expect_all_or_drop, expect_all_or_fail

REQUIRED = feeds.FEEDS["lab_results"].required  # lab_result_id, patient_id, loinc_code, value, …
LOINC = ", ".join(f"'{code}'" for code in sorted(codes.CODE_TABLES["LOINC"]))
# TODO: DROP_RULES: well_formed, required_fields, valid_loinc_code; WARN_RULES and FAIL_RULES: one rule each
raise NotImplementedError("TODO: DROP_RULES: well_formed, required_fields, valid_loinc_code; WARN_RULES and FAIL_RULES: one rule each")


@dp.materialized_view(name="silver.lab_results_dp", comment="newest valid version of each lab result")
@expect_all(WARN_RULES)  # kept, counted
@expect_all_or_fail(FAIL_RULES)  # the update stops
@expect_all_or_drop(DROP_RULES)  # dropped, counted
def lab_results():
    # TODO: newest change per lab_result_id by updated_at (keyless lines kept), deletes left out, abnormal_flag
    raise NotImplementedError("TODO: newest change per lab_result_id by updated_at (keyless lines kept), deletes left out, abnormal_flag")
