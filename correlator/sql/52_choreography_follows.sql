-- The choreography model's directly-follows graph of subjects per workflow type;
-- from_subject null marks the event that starts a workflow, terminal the events
-- that end one.
CREATE OR REPLACE VIEW choreography_follows AS
SELECT *
FROM read_parquet('{store}/findings/model_follows.parquet');
