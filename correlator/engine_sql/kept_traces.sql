-- The traces a cold pass keeps in memory for ticks: those of open workflows, those
-- that received spans after $since, and every trace that shares a workflow id with
-- those (trace context broken on the way, the workflow id carried on: a workflow is
-- held whole, or a late span would have it judged on part of its spans). The
-- workflow ids come from the pass's messaging spans, already in memory: reading
-- them from the store again cost more.
CREATE OR REPLACE TEMP TABLE kept_traces AS
WITH near AS (
    SELECT trace_id FROM open_traces
    UNION SELECT trace_id FROM stored_spans WHERE received_at > $since
),
near_workflows AS (
    SELECT workflow_id FROM publish_spans WHERE trace_id IN (SELECT trace_id FROM near)
    UNION SELECT workflow_id FROM delivery_spans WHERE trace_id IN (SELECT trace_id FROM near)
)
SELECT trace_id FROM near
UNION SELECT trace_id FROM publish_spans
WHERE workflow_id IN (SELECT workflow_id FROM near_workflows)
UNION SELECT trace_id FROM delivery_spans
WHERE workflow_id IN (SELECT workflow_id FROM near_workflows)
