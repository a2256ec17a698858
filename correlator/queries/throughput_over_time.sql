-- Workflows started per time bucket and by their current status.
SELECT time_bucket($bucket, started_at) AS "at", status, count(*) AS workflows
FROM workflows
WHERE started_at >= $since
GROUP BY ALL
ORDER BY "at", status;
