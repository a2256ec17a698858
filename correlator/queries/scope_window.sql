-- The spans a time-windowed page needs: every trace with a span in the window, plus
-- the traces of workflows the correlator judged stalled or in flight (they stay on
-- screen however old). Whole workflows, not just whole traces: a run whose context
-- broke carries its choreo.workflow.id over several traces, and with only its traces
-- of the window it read as started in the window, with the type of a later event
-- and a duration of its last trace alone.
-- The correlator's views read `correlated_spans`; pointing it at this table (on
-- one connection only) makes edges, hops and workflows cost the window's size,
-- not the store's, as the correlator's own incremental passes do.
-- (A UNION of scans, not one scan with OR: DuckDB plans an OR of IN
-- subqueries as a slow mark join.)
CREATE OR REPLACE TEMP TABLE scoped_spans AS
WITH open_workflows AS (
    SELECT workflow_id FROM workflow_status WHERE status IN ('stalled', 'in_flight')
),
scoped_traces AS (
    SELECT trace_id FROM spans_raw WHERE start_time >= $since
    UNION
    SELECT trace_id FROM spans_raw WHERE workflow_id IN (
        SELECT workflow_id FROM spans_raw WHERE start_time >= $since AND workflow_id IS NOT NULL
    )
    UNION
    SELECT trace_id FROM spans_raw WHERE workflow_id IN (SELECT workflow_id FROM open_workflows)
    UNION
    SELECT workflow_id FROM open_workflows
)
SELECT *
FROM spans_raw
WHERE trace_id IN (SELECT trace_id FROM scoped_traces)
-- The store's exactly-once rule (store/sql/10_spans.sql), applied after the trace
-- filter: through the `spans` view, DuckDB would number every span of the store
-- before filtering (1.7 s instead of 0.09 s on a million spans).
QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY received_at) = 1;
