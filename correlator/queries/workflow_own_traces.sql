-- The traces of one workflow: those carrying its choreo.workflow.id, and the trace
-- it names (a workflow without one is keyed by its trace id). Two filters on a
-- constant, not one with OR: each then reaches the segments, where the row groups'
-- bloom filters of that column skip those that hold neither (an OR read every
-- stored span).
SELECT trace_id FROM spans_raw WHERE workflow_id = $workflow_id
UNION
SELECT trace_id FROM spans_raw WHERE trace_id = $workflow_id
