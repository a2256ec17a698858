-- The traces that make up the rest of the workflows of $traces (traces a tick
-- brought back from the store), that memory does not hold and the tick has not tried
-- ($tried): the traces they link to, and the stored traces that link to them
-- (consumers of another instrumentation, a trace each) or share one of their
-- workflow ids ($workflows: a trace context broken on the way).
-- The store is searched with constant lists, one column at a time: each filter then
-- reaches the segments, where the row groups' bloom filters of link_trace_id and
-- workflow_id skip those that hold none (joins, or one filter on either column,
-- read every stored span).
WITH related(trace_id) AS (
    -- the traces they link to
    SELECT link_trace_id FROM work_spans
    WHERE list_contains($traces, trace_id) AND link_trace_id <> trace_id
    UNION
    SELECT link_trace_id FROM new_spans
    WHERE list_contains($traces, trace_id) AND link_trace_id <> trace_id
    UNION
    -- the stored traces that link to them (consumers of another instrumentation, a
    -- trace each)
    SELECT trace_id FROM spans_raw WHERE list_contains($traces, link_trace_id)
    UNION
    -- the stored traces that share their workflow ids
    SELECT trace_id FROM spans_raw WHERE list_contains(CAST($workflows AS VARCHAR[]), workflow_id)
)
SELECT trace_id FROM related
WHERE trace_id NOT IN (SELECT trace_id FROM work_spans)
    AND trace_id NOT IN (SELECT trace_id FROM new_spans)
    AND trace_id NOT IN (SELECT unnest(CAST($tried AS VARCHAR[])))
ORDER BY trace_id
