-- The traces whose spans link into $traces (instrumentations that start a new trace
-- per consumer), and those $traces' own spans link to (so related workflows can be
-- named). A constant list per column, as in workflow_own_traces.sql.
SELECT trace_id FROM spans_raw WHERE list_contains(CAST($traces AS VARCHAR[]), link_trace_id)
UNION
SELECT link_trace_id
FROM spans_raw
WHERE list_contains(CAST($traces AS VARCHAR[]), trace_id) AND link_trace_id IS NOT NULL
