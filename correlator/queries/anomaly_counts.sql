-- Anomalies detected in the window, by kind, most frequent first.
SELECT kind, count(*) AS anomalies
FROM anomalies
WHERE detected_at >= $since
GROUP BY kind
ORDER BY anomalies DESC, kind;
