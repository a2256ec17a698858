-- Every delivery the choreography expects: each message × each consumer expected
-- for its subject (model_steps), plus every consumer actually seen handling it;
-- kept only when it is not settled, that is not processed exactly once (a delivery
-- processed once has nothing to report, and that is nearly all of them: carrying
-- them through the joins below cost most of this statement).
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
failures AS (
    -- attempts that raised (few): those that ran past the step's deadline before they
    -- ended in error overran it (the handler hung), the others failed
    SELECT
        d.message_id,
        d.consumer,
        count(*) FILTER (WHERE NOT d.overran) AS errors,
        count(*) FILTER (WHERE d.overran) AS overruns,
        max(d.start_time) FILTER (WHERE d.overran) AS last_overrun_start,
        arg_max(d.status_message, d.end_time) AS last_error
    FROM (
        SELECT
            d.*,
            d.duration_ms > 1000 * coalesce(st.deadline_s, $min_deadline_s) AS overran
        FROM delivery_spans AS d
        LEFT JOIN model_steps AS st ON st.subject = d.subject AND st.consumer = d.consumer
        WHERE d.operation = 'process' AND d.status_code = 'error'
    ) AS d
    GROUP BY d.message_id, d.consumer
),
seen AS (
    SELECT
        s.message_id,
        s.consumer,
        s.service,
        s.first_received_at,
        s.last_received_at,
        s.receiving_instance,
        s.successes,
        coalesce(f.errors, 0) AS errors,
        coalesce(f.overruns, 0) AS overruns,
        f.last_overrun_start,
        s.first_attempt_at,
        s.last_attempt_end,
        f.last_error
    FROM deliveries_seen AS s
    LEFT JOIN failures AS f USING (message_id, consumer)
),
expected AS (
    -- each message × each consumer the model expects for its subject, and every
    -- consumer seen handling it
    SELECT message_id, consumer, e.consumer_service, s.* EXCLUDE (message_id, consumer)
    FROM (
        SELECT m.message_id, st.consumer, st.consumer_service
        FROM msgs AS m
        JOIN model_steps AS st ON st.subject = m.subject
    ) AS e
    FULL OUTER JOIN seen AS s USING (message_id, consumer)
    WHERE coalesce(s.successes, 0) <> 1
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
    s.message_id,
    s.consumer,
    coalesce(s.service, s.consumer_service) AS consumer_service,
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
FROM msgs AS m  -- the larger side first: hash tables are built on the right
JOIN expected AS s USING (message_id)
LEFT JOIN dead USING (message_id)
LEFT JOIN model_steps AS st ON st.subject = m.subject AND st.consumer = s.consumer;
