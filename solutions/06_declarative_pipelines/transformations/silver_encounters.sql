-- Silver encounters: the newest valid version of each encounter, deletes (op = 'D') applied.
-- A materialized view, recomputed in full by every update. (Lab 06 wants an AUTO CDC flow here;
-- with Delta 4.4.0 it fails: AUTOCDC_TARGET_DOES_NOT_SUPPORT_MERGE, see /work/ref/lab06-spike.md.)
CREATE MATERIALIZED VIEW silver.encounters_dp
COMMENT 'encounters, newest version per encounter_id, deletes applied'
AS SELECT * EXCEPT (_rn, _corrupt_record, _source_file) FROM (
  SELECT *, row_number() OVER (PARTITION BY encounter_id ORDER BY updated_at DESC, _batch_id DESC) AS _rn
  FROM bronze.encounters_dp
  WHERE _corrupt_record IS NULL AND encounter_id IS NOT NULL AND patient_id IS NOT NULL
    AND encounter_class IS NOT NULL AND admit_ts IS NOT NULL AND op IS NOT NULL AND updated_at IS NOT NULL)
WHERE _rn = 1 AND op <> 'D';
