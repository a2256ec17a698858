-- Messages published more than once with the same message id (a producer that
-- retried a publish: JetStream dedupes on Nats-Msg-Id, so they made one message),
-- as one row each, the first publish winning. Retried publishes are rare: only
-- their message ids are aggregated (an aggregate over every publish cost ~0.2 s on
-- 300k messages), and a full pass copies only these rows, not every message.
CREATE OR REPLACE VIEW retried_messages AS
SELECT
    message_id,
    arg_min(workflow_id, published_at) AS workflow_id,
    arg_min(trace_id, published_at) AS trace_id,
    arg_min(span_id, published_at) AS span_id,
    arg_min(parent_span_id, published_at) AS parent_span_id,
    arg_min(subject, published_at) AS subject,
    arg_min(producer_service, published_at) AS producer_service,
    min(published_at) AS published_at,
    count(*) AS publish_count
FROM publish_spans
WHERE message_id IN (
    SELECT message_id FROM publish_spans GROUP BY message_id HAVING count(*) > 1
)
GROUP BY message_id;
