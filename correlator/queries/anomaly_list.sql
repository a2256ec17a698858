-- Anomalies in the window, optionally of some kinds, newest first within a kind.
SELECT kind, detail, workflow_id, service, subject, message_id, root_cause,
       detected_at, resolved_at
FROM anomalies
WHERE detected_at >= $since
  AND (len($kinds) = 0 OR list_contains($kinds, kind))
  AND ($include_resolved OR resolved_at IS NULL)
ORDER BY kind, detected_at DESC
LIMIT $limit;
