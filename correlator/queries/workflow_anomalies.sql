-- Anomalies found in one workflow, with their explanations; the stall first.
SELECT kind, detail, service, subject, message_id, root_cause, detected_at, resolved_at
FROM anomalies
WHERE workflow_id = $workflow_id
ORDER BY resolved_at IS NOT NULL, kind = 'stalled' DESC, detected_at;
