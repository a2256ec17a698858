-- Anomalies detected in the window and still open, by kind, most frequent first
-- (as the Anomalies page lists them by default: a resolved one is history).
SELECT kind, count(*) AS anomalies
FROM anomalies
WHERE detected_at >= $since AND resolved_at IS NULL
GROUP BY kind
ORDER BY anomalies DESC, kind;
