-- One workflow run, for its detail page.
SELECT workflow_id, workflow_type, status, started_at, last_activity_at, ended_at,
       duration_ms, waiting_on, root_cause, services, span_count, error_count
FROM workflows
WHERE workflow_id = $workflow_id;
