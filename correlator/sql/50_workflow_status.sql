-- The correlator's verdict per workflow: completed, in_flight, stalled or failed,
-- with the step it waits on and the root cause when it is stuck.
CREATE OR REPLACE VIEW workflow_status AS
SELECT *
FROM read_parquet('{store}/findings/workflow_status.parquet');
