-- Gold: materialized views, recomputed in full by every update (open-source SDP has no incremental refresh).
CREATE MATERIALIZED VIEW gold.encounters_by_class_dp
COMMENT 'encounters per class (current versions, deletes applied)'
AS SELECT encounter_class, count(*) AS encounters
FROM silver.encounters_dp
GROUP BY encounter_class;

CREATE MATERIALIZED VIEW gold.abnormal_results_by_test_dp
AS SELECT loinc_code, test_name, count(*) AS results,
          count_if(value < ref_low OR value > ref_high) AS abnormal_results
FROM silver.lab_results_dp
GROUP BY loinc_code, test_name;
