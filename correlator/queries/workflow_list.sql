-- The Workflows table, filtered. Every filter is optional: an empty status list,
-- a NULL type, service or search means "any". The free-text search matches a
-- workflow id or one of its trace ids (substring), or any span attribute value.
SELECT workflow_id, status, workflow_type, waiting_on, root_cause, started_at,
       last_activity_at, duration_ms, services, span_count, error_count
FROM workflows
WHERE (last_activity_at >= $since OR status IN ('stalled', 'in_flight'))
  AND (len($statuses) = 0 OR list_contains($statuses, status))
  AND ($workflow_type IS NULL OR workflow_type = $workflow_type)
  AND ($service IS NULL OR list_contains(services, $service))
  AND ($search IS NULL
       OR workflow_id ILIKE '%' || $search || '%'
       OR len(list_filter(trace_ids, lambda t: t ILIKE '%' || $search || '%')) > 0
       OR workflow_id IN (
           SELECT workflow_id FROM workflow_spans WHERE attributes ILIKE '%' || $search || '%'
       ))
ORDER BY
    CASE status WHEN 'stalled' THEN 0 WHEN 'failed' THEN 1 WHEN 'in_flight' THEN 2 ELSE 3 END,
    last_activity_at DESC
LIMIT $limit;
