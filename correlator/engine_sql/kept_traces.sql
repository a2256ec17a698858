-- The traces a cold pass keeps in memory for ticks: those of open workflows, those
-- that received spans after $since, and every trace that shares a workflow id with
-- those (trace context broken on the way, the workflow id carried on: a workflow is
-- held whole, or a late span would have it judged on part of its spans). Open
-- workflows' traces are whole already; the recent spans' workflow ids are read from
-- the store's recent row groups only, and their traces looked up among the pass's
-- messaging spans, already in memory (reading the store again cost more).
CREATE OR REPLACE TEMP TABLE kept_traces AS
WITH recent AS (
    SELECT trace_id, workflow_id FROM stored_spans WHERE received_at > $since
),
recent_workflows AS (
    SELECT DISTINCT workflow_id FROM recent WHERE workflow_id IS NOT NULL
)
SELECT trace_id FROM open_traces
UNION SELECT trace_id FROM recent
UNION SELECT trace_id FROM publish_spans
WHERE workflow_id IN (SELECT workflow_id FROM recent_workflows)
UNION SELECT trace_id FROM delivery_spans
WHERE workflow_id IN (SELECT workflow_id FROM recent_workflows)
