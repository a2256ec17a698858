-- Every span with the workflow it belongs to. A span's own choreo.workflow.id wins
-- (it survives broken trace context); otherwise its trace's (inherited_workflows).
-- consumer: the consumer group, or the consuming service where spans carry no group
-- (DESIGN.md: "the consuming service stands in for it").
CREATE OR REPLACE VIEW workflow_spans AS
SELECT
    s.* EXCLUDE (workflow_id),
    coalesce(s.workflow_id, i.workflow_id, s.trace_id) AS workflow_id,
    coalesce(s.consumer_group, s.service_name) AS consumer
FROM correlated_spans AS s
LEFT JOIN inherited_workflows AS i ON s.workflow_id IS NULL AND i.trace_id = s.trace_id;
