-- deviation: an event that the workflow type's choreography does not allow after
-- the event that caused it. Declared types allow only declared transitions; learned
-- types (once trusted) allow transitions seen in enough of their runs. A publish
-- whose cause has not arrived yet (cause_seen) is judged once it has.
CREATE OR REPLACE TEMP TABLE d_deviation_findings AS
SELECT
    'deviation' AS kind,
    'out_of_model' AS root_cause,
    t.workflow_id,
    w.workflow_type,
    w.trace_id,
    t.producer_service AS service,
    t.to_subject AS subject,
    t.to_message_id AS message_id,
    t.to_subject AS step,
    t.consumer,
    t.from_subject,
    t.published_at AS since,
    f.support,
    w.declared
FROM transitions AS t
JOIN d_workflows AS w USING (workflow_id)
LEFT JOIN model_follows AS f
    ON f.workflow_type = w.workflow_type
    AND f.from_subject IS NOT DISTINCT FROM t.from_subject
    AND f.to_subject = t.to_subject
WHERE w.model_trusted
    AND t.cause_seen
    AND t.to_subject NOT LIKE 'dlq.%'
    AND (
        f.to_subject IS NULL
        OR (NOT w.declared
            AND f.support < greatest(2, $min_transition_share * w.type_workflows))
    );
