-- The traces span links join to the kept ones, however many hops away, added to
-- kept_traces: a workflow of traces that name no workflow id (other
-- instrumentations, links only) is kept whole too. Run only when some span lacks a
-- workflow id: otherwise the workflow ids (kept_traces.sql) join all of a workflow.
-- The links are read from the store once (MATERIALIZED), not at every hop.
INSERT INTO kept_traces
WITH RECURSIVE pairs AS MATERIALIZED (
    SELECT DISTINCT trace_id, link_trace_id AS other FROM stored_spans
    WHERE link_trace_id <> trace_id
),
links AS MATERIALIZED (  -- both ways: an equality join, not a nested loop
    SELECT trace_id, other FROM pairs
    UNION SELECT other, trace_id FROM pairs
),
closure(trace_id) AS (
    SELECT trace_id FROM kept_traces
    UNION
    SELECT l.other FROM closure AS c JOIN links AS l USING (trace_id)
)
SELECT trace_id FROM closure
EXCEPT SELECT trace_id FROM kept_traces
