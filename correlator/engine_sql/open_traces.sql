-- Traces of workflows that may still change, which every tick re-judges: those not
-- completed and active since $horizon (a workflow stuck for longer keeps its last
-- verdict), and those with a consumer span whose producer span has not arrived,
-- until its orphan grace has passed twice over: a workflow can complete within the
-- grace, and the orphan is found only by a pass after it.
CREATE OR REPLACE TEMP TABLE open_traces AS
SELECT s.trace_id
FROM workflow_spans AS s
JOIN d_workflow_status AS w USING (workflow_id)
WHERE w.status <> 'completed' AND w.last_activity_at > $horizon
UNION
SELECT trace_id
FROM delivery_spans
WHERE NOT producer_seen AND ref_key IS NOT NULL AND start_time > $orphan_horizon
