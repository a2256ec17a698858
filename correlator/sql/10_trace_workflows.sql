-- The workflow each trace belongs to (DESIGN.md: the spans sharing
-- choreo.workflow.id, else the trace id).
-- A trace with no choreo.workflow.id on any span follows its span links to the
-- trace it came from (instrumentations that start a new trace per consumer and
-- link back), up to 8 hops, so a chain of link-only traces is still one workflow.
-- Links to traces that are not present stop the walk there.
CREATE OR REPLACE VIEW trace_workflows AS
WITH RECURSIVE per_trace AS (
    SELECT
        trace_id,
        max(workflow_id) AS workflow_id,
        min(link_trace_id) FILTER (WHERE link_trace_id <> trace_id) AS linked_trace
    FROM correlated_spans
    GROUP BY trace_id
),
walk AS (
    SELECT trace_id, trace_id AS at_trace, workflow_id, linked_trace, 0 AS depth
    FROM per_trace
    UNION ALL
    SELECT w.trace_id, p.trace_id, p.workflow_id, p.linked_trace, w.depth + 1
    FROM walk AS w
    JOIN per_trace AS p ON p.trace_id = w.linked_trace
    WHERE w.workflow_id IS NULL AND w.depth < 8
)
SELECT trace_id, arg_max(coalesce(workflow_id, at_trace), depth) AS workflow_id
FROM walk
GROUP BY trace_id;
