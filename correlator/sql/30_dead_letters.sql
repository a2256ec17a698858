-- Evidence that a message was dead-lettered, from any of three sources:
--   a JetStream advisory (terminated, or past max deliveries), read back to the
--     message by the collector (its trace context / Nats-Msg-Id);
--   a republish to the dead-letter subject (dlq.<subject>) from inside the
--     consumer's process span;
--   a `term` settle span.
CREATE OR REPLACE VIEW dead_letters AS
SELECT
    coalesce(p.message_id, b.message_id) AS message_id,
    b.consumer,
    b.kind AS source,
    b.at,
    b.reason,
    coalesce(p.subject, b.subject) AS subject
FROM bus_events AS b
LEFT JOIN publish_spans AS p ON p.trace_id = b.trace_id AND p.span_id = b.span_id
WHERE b.kind IN ('terminated', 'max_deliveries')
    AND coalesce(p.message_id, b.message_id) IS NOT NULL
UNION ALL
SELECT
    coalesce(d.message_id, p.message_id) AS message_id,
    coalesce(d.consumer, p.producer_service) AS consumer,
    'dead_letter_subject' AS source,
    p.published_at AS at,
    NULL AS reason,
    dead_lettered_from(p.subject) AS subject
FROM publish_spans AS p
LEFT JOIN (
    -- only the consumer spans dead-letter publishes are children of (few)
    SELECT * FROM delivery_spans
    WHERE span_key IN (
        SELECT parent_key FROM publish_spans WHERE is_dead_letter_subject(subject)
    )
) AS d ON d.span_key = p.parent_key AND d.span_id = p.parent_span_id
WHERE is_dead_letter_subject(p.subject)
UNION ALL
SELECT message_id, consumer, 'term' AS source, start_time AS at, status_message AS reason, subject
FROM delivery_spans
WHERE operation = 'settle' AND settlement = 'term';
