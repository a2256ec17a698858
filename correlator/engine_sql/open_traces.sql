-- Traces of workflows that may still change, which ticks re-judge without new spans
-- (as time passes, a wait runs past its deadline): those not completed and active
-- within $keep of $now (a workflow stuck for longer keeps its last verdict), and
-- those with a consumer span whose producer span has not arrived, until its orphan
-- grace has passed twice over ($orphan_keep: a workflow can complete within the
-- grace, and the orphan is found only by a pass after it).
-- settled: the workflow is stalled or failed already, its anomalies told; a tick
-- re-judges it only now and then (span_memory.scope). open_until: when it leaves.
-- Of the workflows judged in this pass (d_workflow_status); a cold pass creates the
-- table from them, a tick replaces the rows of those it judged.
SELECT s.trace_id, s.workflow_id, w.status IN ('stalled', 'failed') AS settled,
       w.last_activity_at + $keep AS open_until
FROM workflow_spans AS s
JOIN d_workflow_status AS w USING (workflow_id)
WHERE w.status <> 'completed' AND w.last_activity_at + $keep > CAST($now AS TIMESTAMPTZ)
UNION
SELECT trace_id, workflow_id, false, greatest(start_time, received_at) + $orphan_keep
FROM delivery_spans
WHERE NOT producer_seen AND ref_key IS NOT NULL
    AND greatest(start_time, received_at) + $orphan_keep > CAST($now AS TIMESTAMPTZ)
