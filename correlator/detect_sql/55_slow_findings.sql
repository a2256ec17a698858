-- slow: a step that completed, but past its declared SLA, or (without one) far past
-- its learned p95: slow_factor times it, and at least slow_min_excess_s more, once
-- the step has slow_min_samples samples. Only the first successful attempt counts
-- (deliveries_seen): a redelivered copy processed again later is a duplicate, not a
-- slow step.
-- A publish is never earlier than the publish of the message whose handling made it
-- (its cause, the process span its span is the child of): a producer host whose
-- clock runs behind stamps it earlier, and the next step's latency, taken from that
-- stamp, grows by the skew (10 s behind made a 0.1 s step "slow"). The few steps
-- over their bar are measured again from the later of the two.
CREATE OR REPLACE TEMP TABLE d_slow_findings AS
WITH over AS (
    SELECT
        h.workflow_id,
        h.trace_id,
        h.service,
        h.subject,
        h.message_id,
        h.consumer,
        h.published_at,
        h.success_ended_at,
        h.latency_ms,
        h.queue_wait_ms,
        h.processing_ms,
        -- attempts that failed or were given back before the one that succeeded: a
        -- step slow only because its first attempt failed and was retried after a
        -- backoff spent that time there, not queued behind a busy consumer
        CASE WHEN h.first_attempt_at < h.success_started_at
            THEN h.attempts - h.successes ELSE 0 END AS retried_attempts,
        s.p95_ms,
        s.sla_s
    FROM deliveries_seen AS h
    JOIN model_steps AS s ON s.subject = h.subject AND s.consumer = h.consumer
    WHERE h.successes > 0
        AND CASE
            WHEN s.sla_s IS NOT NULL THEN h.latency_ms > s.sla_s * 1000
            ELSE s.samples >= $slow_min_samples
                AND h.latency_ms > $slow_factor * s.p95_ms
                AND h.latency_ms - s.p95_ms > $slow_min_excess_s * 1000
        END
),
caused_by AS (
    -- the message whose process span each slow step's publish was made in (the few
    -- publishes on the side a join builds its hash table from)
    SELECT p.message_id, d.message_id AS cause_message_id
    FROM delivery_spans AS d
    JOIN (
        SELECT message_id, parent_key, parent_span_id FROM publish_spans
        WHERE message_id IN (SELECT message_id FROM over)
    ) AS p ON d.span_key = p.parent_key AND d.span_id = p.parent_span_id
    WHERE d.operation = 'process'
),
causes AS (
    SELECT c.message_id, max(m.published_at) AS cause_published_at
    FROM published_messages AS m
    JOIN caused_by AS c ON m.message_id = c.cause_message_id
    GROUP BY c.message_id
),
measured AS (
    SELECT
        o.*,
        CASE WHEN c.cause_published_at > o.published_at
            THEN greatest(epoch_us(o.success_ended_at) - epoch_us(c.cause_published_at), 0)
                / 1000.0
            ELSE o.latency_ms
        END AS real_latency_ms
    FROM over AS o
    LEFT JOIN causes AS c USING (message_id)
)
SELECT
    'slow' AS kind,
    'slow' AS root_cause,
    h.workflow_id,
    w.workflow_type,
    h.trace_id,
    h.service AS service,
    h.subject,
    h.message_id,
    h.subject AS step,
    h.consumer,
    h.published_at AS since,
    h.real_latency_ms AS latency_ms,
    h.queue_wait_ms,
    h.processing_ms,
    h.retried_attempts,
    h.p95_ms,
    h.sla_s
FROM measured AS h
LEFT JOIN d_workflows AS w USING (workflow_id)
WHERE CASE
    WHEN h.sla_s IS NOT NULL THEN h.real_latency_ms > h.sla_s * 1000
    ELSE h.real_latency_ms > $slow_factor * h.p95_ms
        AND h.real_latency_ms - h.p95_ms > $slow_min_excess_s * 1000
END;
