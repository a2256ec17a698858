-- Anomalies in the window, optionally of some kinds, newest first within a kind.
-- An open anomaly of a run still stalled or in flight is listed however long ago it
-- was found, as the workflow lists keep such runs (workflow_list.sql): a run stalled
-- since before the window must not leave its Overview tile without its why.
SELECT kind, detail, workflow_id, service, subject, message_id, root_cause,
       detected_at, resolved_at
FROM anomalies
WHERE (detected_at >= $since
       OR (resolved_at IS NULL AND workflow_id IN (
           SELECT workflow_id FROM workflow_status WHERE status IN ('stalled', 'in_flight'))))
  AND (len($kinds) = 0 OR list_contains($kinds, kind))
  AND ($include_resolved OR resolved_at IS NULL)
ORDER BY kind, detected_at DESC
LIMIT $limit;
