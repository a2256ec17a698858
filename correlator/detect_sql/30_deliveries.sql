-- Every delivery the choreography expects: each message × each consumer expected
-- for its subject (model_steps), plus every consumer actually seen handling it.
-- state, in order of precedence:
--   done           processed successfully at least once
--   dead_lettered  terminated, past max deliveries, or republished to dlq.*
--   received       a receive span newer than the last finished attempt: the handler
--                  started and has not finished
--   failed         every finished attempt raised
--   overran        its only finished attempts ran past the step's deadline before
--                  they ended in error (cancelled, killed, timed out): the handler
--                  hung (DESIGN.md: no process span ended within the deadline), it
--                  did not fail
--   unreceived     no sign the consumer ever got it
-- since: when the wait began (the publish, else the first sign of the message).
CREATE OR REPLACE TEMP TABLE d_deliveries AS
WITH published_or_handled AS (
    SELECT message_id, workflow_id, trace_id, subject, producer_service, published_at,
           true AS producer_seen
    FROM published_messages
    UNION ALL
    -- messages consumers handled whose publish span never arrived (the messages
    -- view's full outer join, without the per-message consumer lists it also builds)
    SELECT message_id, any_value(workflow_id), any_value(trace_id), any_value(subject),
           NULL, NULL, false
    FROM (SELECT * FROM delivery_spans WHERE NOT producer_seen)
    ANTI JOIN published_messages USING (message_id)
    GROUP BY message_id
),
msgs AS (
    SELECT m.*, w.workflow_type
    FROM published_or_handled AS m
    LEFT JOIN d_workflows AS w USING (workflow_id)
),
attempts AS (
    SELECT
        d.*,
        d.operation = 'process' AND d.status_code = 'error'
            AND d.duration_ms > 1000 * coalesce(st.deadline_s, $min_deadline_s) AS overran
    FROM delivery_spans AS d
    LEFT JOIN model_steps AS st ON st.subject = d.subject AND st.consumer = d.consumer
    WHERE d.operation IN ('receive', 'process')
),
seen AS (
    SELECT
        message_id,
        consumer,
        any_value(service_name) AS service,
        min(start_time) FILTER (WHERE operation = 'receive') AS first_received_at,
        max(start_time) FILTER (WHERE operation = 'receive') AS last_received_at,
        arg_max(service_instance_id, start_time) FILTER (WHERE operation = 'receive')
            AS receiving_instance,
        count(*) FILTER (WHERE operation = 'process' AND status_code <> 'error') AS successes,
        count(*) FILTER (WHERE operation = 'process' AND status_code = 'error' AND NOT overran)
            AS errors,
        count(*) FILTER (WHERE overran) AS overruns,
        max(start_time) FILTER (WHERE overran) AS last_overrun_start,
        min(start_time) FILTER (WHERE operation = 'process') AS first_attempt_at,
        max(end_time) FILTER (WHERE operation = 'process') AS last_attempt_end,
        arg_max(status_message, end_time)
            FILTER (WHERE operation = 'process' AND status_code = 'error') AS last_error
    FROM attempts
    GROUP BY message_id, consumer
),
expected AS (
    SELECT m.message_id, s.consumer, s.consumer_service
    FROM msgs AS m
    JOIN model_steps AS s ON s.subject = m.subject
    UNION
    SELECT message_id, consumer, service
    FROM seen
),
dead AS (
    SELECT
        message_id,
        arg_min(source, "at") AS source,
        min("at") AS "at",
        arg_min(reason, "at") AS reason
    FROM dead_letters
    GROUP BY message_id
)
SELECT
    e.message_id,
    e.consumer,
    coalesce(s.service, e.consumer_service) AS consumer_service,
    m.workflow_id,
    m.workflow_type,
    m.trace_id,
    m.subject,
    m.producer_service,
    m.published_at,
    m.producer_seen,
    s.first_received_at,
    s.last_received_at,
    s.receiving_instance,
    coalesce(s.successes, 0) AS successes,
    coalesce(s.errors, 0) AS errors,
    coalesce(s.overruns, 0) AS overruns,
    s.last_overrun_start,
    s.last_attempt_end,
    s.last_error,
    dead.source AS dead_letter_source,
    dead.at AS dead_lettered_at,
    dead.reason AS dead_letter_reason,
    coalesce(st.deadline_s, $min_deadline_s) AS deadline_s,
    coalesce(m.published_at, s.first_received_at, s.first_attempt_at) AS since,
    CASE
        WHEN coalesce(s.successes, 0) > 0 THEN 'done'
        WHEN dead.message_id IS NOT NULL THEN 'dead_lettered'
        WHEN s.last_received_at IS NOT NULL
            AND (s.last_attempt_end IS NULL OR s.last_received_at > s.last_attempt_end)
            THEN 'received'
        WHEN coalesce(s.errors, 0) > 0 THEN 'failed'
        WHEN coalesce(s.overruns, 0) > 0 THEN 'overran'
        ELSE 'unreceived'
    END AS state
FROM expected AS e
JOIN msgs AS m USING (message_id)
LEFT JOIN seen AS s USING (message_id, consumer)
LEFT JOIN dead USING (message_id)
LEFT JOIN model_steps AS st ON st.subject = m.subject AND st.consumer = e.consumer;
