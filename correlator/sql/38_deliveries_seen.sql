-- What each consumer was seen doing with each message: one row per (message,
-- consumer) with its receives, processing attempts and first success. Detection
-- and learning read this instead of hops (one row per attempt): the first success
-- is the step's latency (a redelivered copy processed again later is a duplicate,
-- not a slower step).
CREATE OR REPLACE VIEW deliveries_seen AS
WITH terminated AS (
    -- attempts the bus says were refused: a JetStream `terminated` advisory (few) is
    -- about the attempt of the group it names (01_nats_names.sql) just before it.
    -- Another instrumentation's handler that calls term() and returns leaves a process
    -- span ended without error and no settle span: the advisory is the only sign that
    -- attempt processed nothing. (A max_deliveries advisory is not read so: it fires
    -- on the next pull, and may follow an attempt that acked, past its ack wait.)
    -- An attempt begun after it is a replay's; the latest attempt of all stands in
    -- when none began before it (the handler's host clock runs ahead of the server's)
    SELECT d.span_key, d.span_id
    FROM delivery_spans AS d  -- the few advisories on the right: a join builds that side
    JOIN (SELECT * FROM dead_letters WHERE source = 'terminated') AS t
        ON d.message_id = t.message_id AND named_after_group(t.consumer, d.consumer)
    WHERE d.operation = 'process'
    QUALIFY row_number() OVER (
        PARTITION BY t.message_id, t.consumer, t."at", d.consumer
        ORDER BY d.start_time <= t."at" DESC, d.start_time DESC
    ) = 1
),
given_back AS (
    -- attempts their handler settled with a nak (deliver it again) or a term (refused),
    -- the settle span their child (few: acks are not kept), or that a terminated
    -- advisory refused. Such an attempt processed nothing, though it may have returned
    -- without raising (a TracedMsg handler that finds the message not ready, or
    -- unusable)
    SELECT DISTINCT settled_key AS span_key, settled_span_id AS span_id
    FROM delivery_spans
    WHERE settlement IN ('nak', 'term') AND settled_key IS NOT NULL
    UNION
    SELECT * FROM terminated
),
attempts AS (
    SELECT
        d.*,
        d.operation = 'process' AND d.status_code <> 'error' AND g.span_key IS NULL
            AS succeeded,
        d.operation = 'process' AND d.status_code <> 'error' AND g.span_key IS NOT NULL
            AS returned_given_back
    FROM delivery_spans AS d
    LEFT JOIN given_back AS g ON g.span_key = d.span_key AND g.span_id = d.span_id
),
seen AS (
    SELECT
        message_id,
        consumer,
        any_value(service_name) AS service,
        -- a dead-letter subject this consumer got the message on (see below)
        any_value(subject) FILTER (WHERE is_dead_letter_subject(subject)) AS dead_letter_subject,
        min(start_time) FILTER (WHERE operation = 'receive') AS first_received_at,
        max(start_time) FILTER (WHERE operation = 'receive') AS last_received_at,
        arg_max(service_instance_id, start_time) FILTER (WHERE operation = 'receive')
            AS receiving_instance,
        count(*) FILTER (WHERE operation = 'receive') AS receives,
        count(*) FILTER (WHERE operation = 'process') AS attempts,
        count(*) FILTER (WHERE succeeded) AS successes,
        -- attempts that returned without raising, but gave the message back
        count(*) FILTER (WHERE returned_given_back) AS given_back,
        min(start_time) FILTER (WHERE operation = 'process') AS first_attempt_at,
        max(start_time) FILTER (WHERE operation = 'process') AS last_attempt_at,
        max(end_time) FILTER (WHERE operation = 'process') AS last_attempt_end,
        min(start_time) FILTER (WHERE succeeded) AS success_started_at,
        arg_min(end_time, start_time) FILTER (WHERE succeeded) AS success_ended_at,
        -- a redelivery the consumer asked for (JetStream delivers it again after a
        -- backoff): its last nak settle span, and when that nak said the redelivery
        -- is due (its delay, choreo.nak.delay_ms; null when it gave none, as other
        -- instrumentations do)
        max(start_time) FILTER (WHERE settlement = 'nak') AS last_nak_at,
        arg_max_null(
            start_time + to_microseconds(CAST(nak_delay_ms * 1000 AS BIGINT)), start_time
        ) FILTER (WHERE settlement = 'nak') AS retry_due_at
    FROM attempts
    GROUP BY message_id, consumer
),
unpublished AS (
    -- a message's own columns come from its publish; only a message whose publish
    -- never arrived (few) takes them from its consumer spans
    SELECT message_id, any_value(workflow_id) AS workflow_id, any_value(trace_id) AS trace_id,
           any_value(subject) AS subject
    FROM delivery_spans
    WHERE NOT producer_seen
    GROUP BY message_id
)
SELECT
    s.* EXCLUDE (dead_letter_subject),
    coalesce(p.workflow_id, u.workflow_id) AS workflow_id,
    coalesce(p.trace_id, u.trace_id) AS trace_id,
    -- a dead letter keeps its message's id (an Agent republishes it with its original
    -- headers), so its publish is taken for a retry of the message's: a group that
    -- consumes the dead-letter subject handled that subject, not the message's own
    -- (else every message of the subject would be owed to it)
    coalesce(s.dead_letter_subject, p.subject, u.subject) AS subject,
    p.producer_service,
    p.published_at,
    -- clamped at zero across skewed clocks (as in hops); null without a publish span
    CASE WHEN p.published_at IS NOT NULL
        THEN greatest(epoch_us(s.success_ended_at) - epoch_us(p.published_at), 0) / 1000.0
    END AS latency_ms,
    CASE WHEN p.published_at IS NOT NULL
        THEN greatest(epoch_us(s.success_started_at) - epoch_us(p.published_at), 0) / 1000.0
    END AS queue_wait_ms,
    greatest(epoch_us(s.success_ended_at) - epoch_us(s.success_started_at), 0) / 1000.0
        AS processing_ms
FROM seen AS s
LEFT JOIN published_messages AS p USING (message_id)
LEFT JOIN unpublished AS u USING (message_id);
