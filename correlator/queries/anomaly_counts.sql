-- Anomalies detected in the window and still open, by kind, most frequent first
-- (as the Anomalies page lists them by default: a resolved one is history). An open
-- anomaly of a run still stalled or in flight counts however long ago it was found,
-- as the stalled tile counts that run (overview_tiles.sql, anomaly_list.sql).
SELECT kind, count(*) AS anomalies
FROM anomalies
WHERE resolved_at IS NULL
  AND (detected_at >= $since OR workflow_id IN (
      SELECT workflow_id FROM workflow_status WHERE status IN ('stalled', 'in_flight')))
GROUP BY kind
ORDER BY anomalies DESC, kind;
