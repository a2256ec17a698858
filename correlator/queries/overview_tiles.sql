-- The Overview tiles: workflows by status and end-to-end latency, in the window.
-- "Started" counts runs that began in the window; the status counts cover every
-- run active in it, so a workflow stalled since before the window still shows.
SELECT
    count(*) FILTER (WHERE started_at >= $since) AS started,
    count(*) FILTER (WHERE status = 'completed') AS completed,
    count(*) FILTER (WHERE status = 'in_flight') AS in_flight,
    count(*) FILTER (WHERE status = 'stalled') AS stalled,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    quantile_cont(duration_ms, 0.5) FILTER (WHERE status = 'completed') AS p50_ms,
    quantile_cont(duration_ms, 0.95) FILTER (WHERE status = 'completed') AS p95_ms
FROM workflows
WHERE last_activity_at >= $since OR status IN ('stalled', 'in_flight');
