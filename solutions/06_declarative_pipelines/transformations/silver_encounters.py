# ruff: noqa: F821 - `spark` is the session spark-pipelines puts into this file's globals
"""Silver encounters, SCD Type 1: the newest valid version of each encounter, deletes applied.

A materialized view, recomputed from all of bronze by every update. Its query returns the
*candidate rows*: per encounter_id the change with the greatest ``updated_at`` (the change time:
AUTO CDC's ``sequence_by``) unless that change is a delete (``apply_as_deletes``), plus every line
without a key (malformed lines, null ids), so that the rules see and count them. Lab 02's
quarantine rules are declared as expectations that drop: a failing row never reaches silver and
the event log counts it.

On Databricks this would be an AUTO CDC flow into a streaming table; here AUTO CDC cannot write
Delta (AUTOCDC_TARGET_DOES_NOT_SUPPORT_MERGE, see the notebook), so the view recomputes it.
"""

from pyspark import pipelines as dp

from medilake_lab.contract import feeds
from medilake_lab.runtime.expectations import expect_all_or_drop

REQUIRED = feeds.FEEDS["encounters"].required  # encounter_id, patient_id, encounter_class, admit_ts, op, …
# BEGIN SOLUTION RULES = {name: constraint}: well_formed (no _corrupt_record) and required_fields (REQUIRED not null)
RULES = {
    "well_formed": "_corrupt_record IS NULL",
    "required_fields": " AND ".join(f"{c} IS NOT NULL" for c in REQUIRED),
}
# END SOLUTION


@dp.materialized_view(name="silver.encounters_dp", comment="SCD Type 1: newest version per encounter, deletes applied")
@expect_all_or_drop(RULES)
def encounters():
    # BEGIN SOLUTION newest change per encounter_id by updated_at (keyless lines kept), deletes left out
    return spark.sql("""
        SELECT * EXCEPT (_rn),
               CAST(datediff(CAST(discharge_ts AS DATE), CAST(admit_ts AS DATE)) AS INT) AS length_of_stay_days
        FROM (SELECT *, row_number() OVER (PARTITION BY encounter_id ORDER BY updated_at DESC, _batch_id) AS _rn
              FROM bronze.encounters_dp)
        WHERE (encounter_id IS NULL OR _rn = 1) AND op IS DISTINCT FROM 'D'
    """)
    # END SOLUTION
