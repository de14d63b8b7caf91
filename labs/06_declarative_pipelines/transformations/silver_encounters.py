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
# TODO: RULES = {name: constraint}: well_formed (no _corrupt_record) and required_fields (on parsed lines)
raise NotImplementedError("TODO: RULES = {name: constraint}: well_formed (no _corrupt_record) and required_fields (on parsed lines)")


@dp.temporary_view(name="encounter_changes", comment="bronze encounter lines that pass lab 02's rules")
@expect_all_or_drop(RULES)
def encounter_changes():
    return spark.read.table("bronze.encounters_dp")


@dp.materialized_view(name="silver.encounters_dp", comment="SCD Type 1: newest version per encounter, deletes applied")
def encounters():
    # TODO: newest change per encounter_id by updated_at, deleted keys left out, plus length_of_stay_days
    raise NotImplementedError("TODO: newest change per encounter_id by updated_at, deleted keys left out, plus length_of_stay_days")
