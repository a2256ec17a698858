-- Anomalies detected per time bucket, by kind and state: `open` (not resolved: what
-- the Overview's "Open anomalies by kind" tiles count) or `resolved` since. Counted
-- together, the chart's bars read as what is stuck now while the tiles beside it
-- counted open ones only, and the two disagreed.
SELECT
    time_bucket($bucket, detected_at) AS "at",
    kind,
    CASE WHEN resolved_at IS NULL THEN 'open' ELSE 'resolved' END AS state,
    count(*) AS anomalies
FROM anomalies
WHERE detected_at >= $since
GROUP BY ALL
ORDER BY "at", state, kind;
