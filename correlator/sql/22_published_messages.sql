-- One row per published message. A producer that retried a publish with the same
-- message id made one message (JetStream dedupes on Nats-Msg-Id): the first wins.
-- Retried publishes are rare: only their message ids are aggregated, the others
-- pass through (an aggregate over every publish cost ~0.2 s on 300k messages).
CREATE OR REPLACE VIEW published_messages AS
WITH publishes AS NOT MATERIALIZED (
    -- not copied: the correlator reads its own copy of publish_spans, and a reader's
    -- filter (one workflow) reaches into each use
    SELECT * FROM publish_spans
),
retried AS (
    SELECT message_id FROM publishes GROUP BY message_id HAVING count(*) > 1
)
SELECT
    message_id, workflow_id, trace_id, span_id, parent_span_id, subject, producer_service,
    published_at, 1 AS publish_count
FROM publishes
ANTI JOIN retried USING (message_id)
UNION ALL
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
FROM publishes
SEMI JOIN retried USING (message_id)
GROUP BY message_id;
