-- The workflow of each trace that has spans without choreo.workflow.id (other
-- instrumentations, or spans outside a workflow): any span of the trace that
-- carries one, else the trace its span links lead back to (up to 8 hops), else the
-- trace itself. Only those traces (and the traces they link to) are grouped, so a
-- store of our own spans, which all carry the id, pays nothing for it.
CREATE OR REPLACE VIEW inherited_workflows AS
WITH RECURSIVE spans_read AS NOT MATERIALIZED (
    -- not copied: each step below filters it (spans without an id, then the traces
    -- those need), and copying every span's three columns cost more than reading
    -- them again
    SELECT trace_id, workflow_id, link_trace_id FROM correlated_spans
),
needy AS (
    SELECT DISTINCT trace_id FROM spans_read WHERE workflow_id IS NULL
),
wanted AS (
    SELECT trace_id FROM needy
    UNION
    SELECT link_trace_id FROM spans_read
    WHERE link_trace_id IS NOT NULL AND trace_id IN (SELECT trace_id FROM needy)
),
per_trace AS (
    SELECT
        trace_id,
        max(workflow_id) AS workflow_id,
        min(link_trace_id) FILTER (WHERE link_trace_id <> trace_id) AS linked_trace
    FROM spans_read
    WHERE trace_id IN (SELECT trace_id FROM wanted)
    GROUP BY trace_id
),
walk AS (
    SELECT trace_id, trace_id AS at_trace, workflow_id, linked_trace, 0 AS depth
    FROM per_trace
    WHERE trace_id IN (SELECT trace_id FROM needy)
    UNION ALL
    SELECT w.trace_id, p.trace_id, p.workflow_id, p.linked_trace, w.depth + 1
    FROM walk AS w
    JOIN per_trace AS p ON p.trace_id = w.linked_trace
    WHERE w.workflow_id IS NULL AND w.depth < 8
)
SELECT trace_id, arg_max(coalesce(workflow_id, at_trace), depth) AS workflow_id
FROM walk
GROUP BY trace_id;
