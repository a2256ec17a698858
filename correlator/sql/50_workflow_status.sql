-- The correlator's verdict per workflow: completed, in_flight, stalled or failed,
-- with the step it waits on and the root cause when it is stuck. The correlator
-- rewrites the full table now and then and, every tick, a small one of the
-- statuses changed since; the newest verdict per workflow wins. Each is read from
-- its newest generation only (see 45_anomalies.sql).
CREATE OR REPLACE VIEW workflow_status AS
SELECT * EXCLUDE (newest, filename)
FROM (
    SELECT * FROM (
        SELECT min(file) AS newest FROM glob('{store}/findings/workflow_status/*.parquet')
    )
    JOIN read_parquet('{store}/findings/workflow_status/*.parquet', filename = true)
        ON filename = newest
    UNION ALL BY NAME
    SELECT * FROM (
        SELECT min(file) AS newest
        FROM glob('{store}/findings/workflow_status_recent/*.parquet')
    )
    JOIN read_parquet('{store}/findings/workflow_status_recent/*.parquet', filename = true)
        ON filename = newest
)
QUALIFY row_number() OVER (PARTITION BY workflow_id ORDER BY evaluated_at DESC) = 1;
