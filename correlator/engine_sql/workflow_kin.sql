-- The traces that make up the rest of the workflows of $traces (traces a tick
-- brought back from the store), that memory does not hold and the tick has not tried
-- ($tried): the traces they link to, and the stored traces that link to them
-- (consumers of another instrumentation, a trace each) or share their workflow id
-- (a trace context broken on the way).
WITH reloaded AS (
    SELECT trace_id, link_trace_id, workflow_id FROM work_spans
    WHERE trace_id IN (SELECT unnest($traces))
    UNION ALL
    SELECT trace_id, link_trace_id, workflow_id FROM new_spans
    WHERE trace_id IN (SELECT unnest($traces))
),
related(trace_id) AS (
    -- the traces they link to
    SELECT link_trace_id FROM reloaded WHERE link_trace_id <> trace_id
    UNION
    -- the stored traces that link to them (consumers of another
    -- instrumentation, a trace each) or share their workflow id
    SELECT trace_id FROM spans_raw
    WHERE link_trace_id IN (SELECT unnest($traces))
        OR workflow_id IN (
            SELECT workflow_id FROM reloaded WHERE workflow_id IS NOT NULL
        )
)
SELECT trace_id FROM related
WHERE trace_id NOT IN (SELECT trace_id FROM work_spans)
    AND trace_id NOT IN (SELECT trace_id FROM new_spans)
    AND trace_id NOT IN (SELECT unnest(CAST($tried AS VARCHAR[])))
ORDER BY trace_id
