-- composed: created with the views it reads inlined, each computed once per query
-- (store/view_composition.py).
-- One row per processing attempt of a message by a consumer: queue wait (publish to
-- handler start) apart from processing time. Producer and consumer may run on hosts
-- whose clocks disagree: waits are clamped at zero and such hops flagged clock_skew,
-- so no latency is ever negative. (epoch_us differences: date_diff on TIMESTAMPTZ goes
-- through the ICU calendar, which made it most of the view's cost.)
CREATE OR REPLACE VIEW hops AS
WITH received AS (
    SELECT message_id, consumer, min(start_time) AS received_at
    FROM delivery_spans
    WHERE operation = 'receive'
    GROUP BY ALL
),
dead_letter_publishes AS (
    -- a dead letter keeps its message's id (an Agent republishes the original
    -- headers): a hop off the dead-letter subject waited from that republish, made by
    -- the consumer that gave up, not from the message's first publish (few rows)
    SELECT
        message_id,
        subject,
        arg_min(producer_service, published_at) AS producer_service,
        min(published_at) AS published_at
    FROM publish_spans
    WHERE is_dead_letter_subject(subject)
    GROUP BY ALL
),
numbered AS (
    -- attempts numbered over the few columns the window needs: the window's sort
    -- carrying whole hop rows cost most of the view
    SELECT
        span_key,
        row_number() OVER (PARTITION BY message_id, consumer ORDER BY start_time) AS attempt
    FROM delivery_spans
    WHERE operation = 'process'
)
SELECT
    d.workflow_id,
    d.trace_id,
    d.message_id,
    d.subject,
    p.producer_service,
    d.consumer,
    d.service_name AS consumer_service,
    p.published_at,
    r.received_at,
    d.start_time AS started_at,
    d.end_time AS ended_at,
    -- null without a publish span (greatest() would turn a null into 0)
    CASE WHEN p.published_at IS NOT NULL
        THEN greatest(epoch_us(d.start_time) - epoch_us(p.published_at), 0) / 1000.0
    END AS queue_wait_ms,
    greatest(d.duration_ms, 0) AS processing_ms,
    CASE WHEN p.published_at IS NOT NULL
        THEN greatest(epoch_us(d.end_time) - epoch_us(p.published_at), 0) / 1000.0
    END AS latency_ms,
    coalesce(d.start_time < p.published_at OR r.received_at < p.published_at, false) AS clock_skew,
    d.status_code,
    n.attempt,
    d.span_id
FROM delivery_spans AS d
LEFT JOIN (
    SELECT message_id, NULL AS dead_letter_subject, producer_service, published_at
    FROM published_messages
    UNION ALL
    SELECT message_id, subject, producer_service, published_at FROM dead_letter_publishes
) AS p ON p.message_id = d.message_id
    AND p.dead_letter_subject IS NOT DISTINCT FROM
        CASE WHEN is_dead_letter_subject(d.subject) THEN d.subject END
LEFT JOIN received AS r ON r.message_id = d.message_id AND r.consumer = d.consumer
JOIN numbered AS n USING (span_key)
WHERE d.operation = 'process';
