-- The workflow each trace belongs to (DESIGN.md: the spans sharing
-- choreo.workflow.id, else the trace id), for readers that start from a trace id.
-- Traces whose spans lack the id inherit one (inherited_workflows: through their
-- span links, for instrumentations that start a new trace per consumer).
CREATE OR REPLACE VIEW trace_workflows AS
SELECT trace_id, workflow_id
FROM inherited_workflows
UNION ALL
SELECT trace_id, max(workflow_id) AS workflow_id
FROM correlated_spans
WHERE trace_id NOT IN (SELECT trace_id FROM inherited_workflows)
GROUP BY trace_id;
