"""Independent reference results, recomputed from the raw feeds without Spark: per-batch counts
(``raw``), the expected silver tables (``silver``) and gold tables (``gold``, DuckDB)."""
