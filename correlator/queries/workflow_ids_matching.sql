-- Workflow ids that start with what a user typed (`show 3f9c`, the detail page's id
-- box), the exact id first. Read from the spans' own choreo.workflow.id and from the
-- correlator's statuses (which also name workflows keyed by a trace id), never
-- from the `workflows` view, which would rebuild every workflow of the store.
SELECT workflow_id
FROM (
    SELECT workflow_id FROM spans_raw WHERE starts_with(workflow_id, $prefix)
    UNION
    SELECT workflow_id FROM workflow_status WHERE starts_with(workflow_id, $prefix)
)
ORDER BY workflow_id <> $prefix, workflow_id
LIMIT $at_most;
