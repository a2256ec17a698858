-- One row per processing attempt of a message by a consumer: queue wait (publish to
-- handler start) apart from processing time. Producer and consumer may run on hosts
-- whose clocks disagree: waits are clamped at zero and such hops flagged clock_skew,
-- so no latency is ever negative.
CREATE OR REPLACE VIEW hops AS
WITH received AS (
    SELECT message_id, consumer, min(start_time) AS received_at
    FROM delivery_spans
    WHERE operation = 'receive'
    GROUP BY ALL
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
    greatest(date_diff('microsecond', p.published_at, d.start_time), 0) / 1000.0 AS queue_wait_ms,
    greatest(d.duration_ms, 0) AS processing_ms,
    greatest(date_diff('microsecond', p.published_at, d.end_time), 0) / 1000.0 AS latency_ms,
    coalesce(d.start_time < p.published_at OR r.received_at < p.published_at, false) AS clock_skew,
    d.status_code,
    row_number() OVER (PARTITION BY d.message_id, d.consumer ORDER BY d.start_time) AS attempt,
    d.span_id
FROM delivery_spans AS d
LEFT JOIN published_messages AS p USING (message_id)
LEFT JOIN received AS r USING (message_id, consumer)
WHERE d.operation = 'process';
