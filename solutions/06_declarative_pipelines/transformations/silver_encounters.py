# ruff: noqa: F821 - `spark` is the session spark-pipelines puts into this file's globals
"""Silver encounters, SCD Type 1: the newest valid version of each encounter, deletes applied.

Two datasets, as in Lakeflow's CDC pattern:

* the temporary view ``encounter_changes`` declares lab 02's quarantine rules as expectations
  (drop): every bronze line is checked, the failing ones never reach silver, and the event log
  counts them. Rules apply to the rows a query returns, so they sit on the change rows, before
  the versions of a key are reduced to one;
* the materialized view ``silver.encounters_dp`` keeps, per encounter_id, the change with the
  greatest ``updated_at`` (the change time: AUTO CDC's ``sequence_by``) and leaves out the keys
  whose newest change is a delete (``apply_as_deletes``).

On Databricks this second step is an AUTO CDC flow into a streaming table; here AUTO CDC cannot
write Delta (AUTOCDC_TARGET_DOES_NOT_SUPPORT_MERGE, see the notebook), so it is recomputed.
"""

from pyspark import pipelines as dp

from medilake_lab.contract import feeds
from medilake_lab.runtime.expectations import expect_all_or_drop

REQUIRED = feeds.FEEDS["encounters"].required  # encounter_id, patient_id, encounter_class, admit_ts, op, …
# A malformed line has no trustworthy fields: well_formed counts it, the other rules judge parsed lines only.
# BEGIN SOLUTION RULES = {name: constraint}: well_formed (no _corrupt_record) and required_fields (on parsed lines)
RULES = {
    "well_formed": "_corrupt_record IS NULL",
    "required_fields": "_corrupt_record IS NOT NULL OR (" + " AND ".join(f"{c} IS NOT NULL" for c in REQUIRED) + ")",
}
# END SOLUTION


@dp.temporary_view(name="encounter_changes", comment="bronze encounter lines that pass lab 02's rules")
@expect_all_or_drop(RULES)
def encounter_changes():
    return spark.read.table("bronze.encounters_dp")


@dp.materialized_view(name="silver.encounters_dp", comment="SCD Type 1: newest version per encounter, deletes applied")
def encounters():
    # BEGIN SOLUTION newest change per encounter_id by updated_at, deleted keys left out, plus length_of_stay_days
    return spark.sql("""
        SELECT encounter_id, patient_id, encounter_class, admission_type, admit_ts, discharge_ts, facility_id,
               facility_name, department, attending_provider_id, discharge_disposition, updated_at, admission_source,
               CAST(datediff(CAST(discharge_ts AS DATE), CAST(admit_ts AS DATE)) AS INT) AS length_of_stay_days
        FROM (SELECT *, row_number() OVER (PARTITION BY encounter_id ORDER BY updated_at DESC, _batch_id) AS _rn
              FROM encounter_changes)
        WHERE _rn = 1 AND op <> 'D'
    """)
    # END SOLUTION
