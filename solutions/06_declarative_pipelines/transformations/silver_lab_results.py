# ruff: noqa: F821 - `spark` is the session spark-pipelines puts into this file's globals
"""Silver lab results: a materialized view with expectations (the kit's, Lakeflow's names)."""

from pyspark import pipelines as dp

from medilake_lab.runtime.expectations import expect, expect_or_drop


@dp.materialized_view(name="silver.lab_results_dp", comment="newest valid version of each lab result")
@expect("plausible_reference_range", "ref_low <= ref_high")
@expect_or_drop("value_present", "value IS NOT NULL")
@expect_or_drop("well_formed", "_corrupt_record IS NULL AND lab_result_id IS NOT NULL")
def lab_results():
    return spark.sql("""
        SELECT * EXCEPT (_rn) FROM (
          SELECT *, row_number() OVER (PARTITION BY lab_result_id ORDER BY updated_at DESC, _batch_id DESC) AS _rn
          FROM bronze.lab_results_dp)
        WHERE _rn = 1 AND op <> 'D'
    """)
