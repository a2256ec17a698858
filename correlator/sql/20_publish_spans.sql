-- Publish spans (messaging.operation.type = send, or a PRODUCER span from an
-- instrumentation that sets no operation type). Without a message id
-- (Nats-Msg-Id), the publish span's own id names the message.
CREATE OR REPLACE VIEW publish_spans AS
SELECT
    workflow_id,
    trace_id,
    span_id,
    parent_span_id,
    span_key,
    parent_key,
    coalesce(message_id, span_id) AS message_id,
    subject,
    service_name AS producer_service,
    start_time AS published_at,
    status_code
FROM workflow_spans
WHERE operation = 'send' OR (operation IS NULL AND kind = 'producer');
