-- Consumer-side spans (receive, process, settle), each tied to the message it
-- handles: through its span link or parent when that is a publish span (any
-- OpenTelemetry NATS instrumentation), else through its message id (ours), else,
-- for a settle span that names neither, through the process span it is the child of.
-- producer_seen is false when the publish span never arrived; ref_* is what the
-- span points at, so an orphan can be told from a span that points at nothing.
-- Only the few spans whose link or parent is not a publish span look their message
-- id up among published messages (a hash join over every consumer span cost half
-- of the view on 1M spans).
CREATE OR REPLACE VIEW delivery_spans AS
WITH by_link AS (
    SELECT
        c.*,
        by_ref.span_id IS NOT NULL AS ref_is_publish,
        by_ref.subject AS ref_subject,
        by_ref.message_id AS ref_message_id
    FROM workflow_spans AS c
    LEFT JOIN publish_spans AS by_ref
        ON by_ref.trace_id = coalesce(c.link_trace_id, c.trace_id)
        AND by_ref.span_id = coalesce(c.link_span_id, c.parent_span_id)
    WHERE c.operation IN ('receive', 'process', 'settle')
        OR (c.operation IS NULL AND c.kind = 'consumer')
),
by_message AS (
    SELECT l.*, by_id.message_id IS NOT NULL AS id_is_published
    FROM by_link AS l
    LEFT JOIN published_messages AS by_id ON by_id.message_id = l.message_id
    WHERE NOT l.ref_is_publish
    UNION ALL BY NAME
    SELECT *, false AS id_is_published
    FROM by_link
    WHERE ref_is_publish
),
resolved AS MATERIALIZED (
    SELECT
        c.workflow_id,
        c.trace_id,
        c.span_id,
        c.parent_span_id,
        c.name,
        c.kind,
        coalesce(c.operation, 'process') AS operation,
        lower(split_part(c.name, ' ', 1)) AS operation_name,
        c.service_name,
        c.service_instance_id,
        c.consumer,
        coalesce(c.subject, c.ref_subject) AS subject,
        coalesce(c.ref_message_id, c.message_id) AS message_id,
        c.ref_is_publish OR c.id_is_published AS producer_seen,
        coalesce(c.link_trace_id, c.trace_id) AS ref_trace_id,
        coalesce(c.link_span_id, c.parent_span_id) AS ref_span_id,
        c.start_time,
        c.end_time,
        c.duration_ms,
        c.status_code,
        c.status_message
    FROM by_message AS c
)
-- Spans that name their message pass through; only the others (usually few) join
-- their parent (a join over every span cost a third of the view on 1M spans).
SELECT r.* EXCLUDE (message_id, producer_seen, subject), r.message_id, r.producer_seen, r.subject
FROM resolved AS r
WHERE r.message_id IS NOT NULL
UNION ALL BY NAME
SELECT
    r.* EXCLUDE (message_id, producer_seen, subject),
    coalesce(parent.message_id, r.ref_span_id, r.span_id) AS message_id,
    r.producer_seen OR coalesce(parent.producer_seen, false) AS producer_seen,
    coalesce(r.subject, parent.subject) AS subject
FROM resolved AS r
LEFT JOIN resolved AS parent
    ON parent.trace_id = r.trace_id
    AND parent.span_id = r.parent_span_id
WHERE r.message_id IS NULL;
