-- The choreography model's steps: expected consumers of each subject with their
-- latency quantiles and deadlines (learned, or declared in choreography.yaml). Read
-- from the newest generation of the model (see 45_anomalies.sql).
CREATE OR REPLACE VIEW choreography_steps AS
SELECT * EXCLUDE (newest, filename)
FROM (SELECT min(file) AS newest FROM glob('{store}/findings/model_steps/*.parquet'))
JOIN read_parquet('{store}/findings/model_steps/*.parquet', filename = true)
    ON filename = newest;
