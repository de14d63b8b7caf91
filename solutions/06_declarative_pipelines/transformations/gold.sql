-- Gold: materialized views over silver, recomputed in full by every update (open-source SDP has no
-- incremental refresh; Databricks may refresh them incrementally on serverless).

-- Current encounters per class: encounter_class, encounters (BIGINT), patients (distinct patient_id, BIGINT).
CREATE MATERIALIZED VIEW gold.encounters_by_class_dp
COMMENT 'current encounters and patients per encounter class'
AS
-- BEGIN SOLUTION count current encounters and distinct patients per encounter_class
SELECT encounter_class, count(*) AS encounters, count(DISTINCT patient_id) AS patients
FROM silver.encounters_dp
GROUP BY encounter_class
-- END SOLUTION
;

-- Results per test: loinc_code, test_name, results (BIGINT), abnormal_results (abnormal_flag H or L, BIGINT).
CREATE MATERIALIZED VIEW gold.abnormal_results_by_test_dp
COMMENT 'lab results and abnormal results per test'
AS
-- BEGIN SOLUTION count results and abnormal results (abnormal_flag H or L) per loinc_code and test_name
SELECT loinc_code, test_name, count(*) AS results, count_if(abnormal_flag IN ('H', 'L')) AS abnormal_results
FROM silver.lab_results_dp
GROUP BY loinc_code, test_name
-- END SOLUTION
;
