-- The workflows under evaluation, with their type: the declared name whose
-- starts_with is their first event, else that event's subject. model_trusted says
-- whether the type's model may judge deviations (declared, or learned from enough runs).
CREATE OR REPLACE TEMP TABLE d_workflows AS
WITH w AS (
    SELECT
        workflow_id,
        min(start_time) AS started_at,
        max(coalesce(end_time, start_time)) AS last_activity_at,
        arg_min(trace_id, start_time) AS trace_id
    FROM workflow_spans
    GROUP BY workflow_id
)
SELECT
    w.*,
    f.first_subject,
    coalesce(t.workflow_type, f.first_subject) AS workflow_type,
    coalesce(t.declared, false) AS declared,
    coalesce(t.declared OR t.workflows >= $min_model_workflows, false) AS model_trusted,
    t.workflows AS type_workflows
FROM w
LEFT JOIN workflow_first_events AS f USING (workflow_id)
LEFT JOIN model_types AS t ON t.start_subject = f.first_subject;
