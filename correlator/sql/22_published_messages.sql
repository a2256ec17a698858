-- One row per published message. A producer that retried a publish with the same
-- message id made one message (JetStream dedupes on Nats-Msg-Id): the first wins.
CREATE OR REPLACE VIEW published_messages AS
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
GROUP BY message_id;
