-- Anomalies detected per time bucket, by kind.
SELECT time_bucket($bucket, detected_at) AS "at", kind, count(*) AS anomalies
FROM anomalies
WHERE detected_at >= $since
GROUP BY ALL
ORDER BY "at", kind;
