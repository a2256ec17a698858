-- The correlator's verdict per workflow: completed, in_flight, stalled or failed,
-- with the step it waits on and the root cause when it is stuck. The correlator
-- rewrites the full file now and then and, every tick, a small file of the
-- statuses changed since; the newest verdict per workflow wins.
CREATE OR REPLACE VIEW workflow_status AS
SELECT *
FROM (
    SELECT * FROM read_parquet('{store}/findings/workflow_status.parquet')
    UNION ALL BY NAME
    SELECT * FROM read_parquet('{store}/findings/workflow_status_recent.parquet')
)
QUALIFY row_number() OVER (PARTITION BY workflow_id ORDER BY evaluated_at DESC) = 1;
