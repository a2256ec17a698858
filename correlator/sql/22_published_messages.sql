-- One row per published message: each publish span, except that the publishes of a
-- retried message (retried_messages) are one row, the first. A view, not a copy, in
-- a full pass too: copying every message cost more than its readers' anti join
-- with the few retried ones.
CREATE OR REPLACE VIEW published_messages AS
SELECT
    message_id, workflow_id, trace_id, span_id, parent_span_id, subject, producer_service,
    published_at, 1 AS publish_count
FROM publish_spans
ANTI JOIN retried_messages USING (message_id)
UNION ALL
SELECT * FROM retried_messages;
