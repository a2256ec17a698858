-- The choreography model's directly-follows graph of subjects per workflow type;
-- from_subject null marks the event that starts a workflow, terminal the events
-- that end one. Read from the newest generation of the model (see 45_anomalies.sql).
CREATE OR REPLACE VIEW choreography_follows AS
SELECT * EXCLUDE (newest, filename)
FROM (SELECT min(file) AS newest FROM glob('{store}/findings/model_follows/*.parquet'))
JOIN read_parquet('{store}/findings/model_follows/*.parquet', filename = true)
    ON filename = newest;
