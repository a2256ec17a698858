-- deviation: an event that the workflow type's choreography does not allow after
-- the event that caused it. Where a declared type says what follows the cause (its
-- start, or a step with `next`), only declared transitions are allowed. Elsewhere
-- (learned types, and the subjects a declared type leaves to learning), once the
-- type has enough runs to learn from, transitions seen in enough of them are. A
-- publish whose cause has not arrived yet (cause_seen) is judged once it has.
-- closed: the cause is a step declared with `next: []` (its one row has no
-- to_subject): nothing may follow it. allowed: what the declaration lets follow it,
-- which the explanation names (a user told only "does not allow" had to open the
-- file to see what was expected instead).
-- Only a message's first publish is an event: a later publish under the same message
-- id (an operator replaying a dead letter from dlq.<subject>, or a producer retrying)
-- is that event again, made outside any handler, and judged as a first event it read
-- as a deviation in a run that only went back to the step it was dead-lettered at.
CREATE OR REPLACE TEMP TABLE d_deviation_findings AS
WITH declared_causes AS (
    SELECT
        workflow_type,
        from_subject,
        bool_and(to_subject IS NULL) AS closed,
        list_sort(list(to_subject) FILTER (WHERE to_subject IS NOT NULL)) AS allowed
    FROM model_follows
    WHERE source = 'declared'
    GROUP BY workflow_type, from_subject
)
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
    d.workflow_type IS NOT NULL AS declared,
    coalesce(d.closed, false) AS closed,
    d.allowed
FROM transitions AS t
JOIN d_workflows AS w USING (workflow_id)
LEFT JOIN model_follows AS f
    ON f.workflow_type = w.workflow_type
    AND f.from_subject IS NOT DISTINCT FROM t.from_subject
    AND f.to_subject = t.to_subject
LEFT JOIN declared_causes AS d
    ON d.workflow_type = w.workflow_type
    AND d.from_subject IS NOT DISTINCT FROM t.from_subject
LEFT JOIN retried_messages AS again ON again.message_id = t.to_message_id
WHERE w.model_trusted
    AND NOT coalesce(t.published_at > again.published_at, false)
    AND t.cause_seen
    AND NOT is_dead_letter_subject(t.to_subject)
    AND CASE
        WHEN d.workflow_type IS NOT NULL THEN coalesce(f.source, '') <> 'declared'
        ELSE coalesce(w.type_workflows, 0) >= $min_model_workflows
            AND (f.to_subject IS NULL
                OR f.support < greatest(2, $min_transition_share * w.type_workflows))
    END;
