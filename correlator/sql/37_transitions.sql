-- Which event caused which. A publish made while a message was being processed
-- (its parent, or its grandparent when the handler opened a span of its own, is
-- that message's process span) follows that message. A publish caused by no
-- message starts the workflow: from_subject is null. cause_seen is false while the
-- publish's parent span has not arrived (a handler's process span is exported when
-- it ends, after what it published): its cause is unknown yet, not "no message".
-- starts_run: the publish was made outside any handler, in a span with no parent or
-- in one whose parent has none (a publish deeper in an app's spans is not known to).
CREATE OR REPLACE VIEW transitions AS
WITH caused AS (
    SELECT
        p.*,
        d1.span_id AS process_span_id,
        d1.subject AS process_subject,
        d1.message_id AS process_message_id,
        d1.consumer AS process_consumer
    FROM publish_spans AS p
    LEFT JOIN delivery_spans AS d1
        ON d1.span_key = p.parent_key AND d1.span_id = p.parent_span_id
        AND d1.operation = 'process'
),
mid AS (
    -- the parents of publishes that are no process span (a handler's own span):
    -- only those are looked up among all spans, usually none of ours
    SELECT span_key, span_id, parent_key, parent_span_id
    FROM workflow_spans
    WHERE span_key IN (
        SELECT parent_key FROM caused WHERE process_span_id IS NULL AND parent_key IS NOT NULL
    )
)
SELECT
    p.workflow_id,
    coalesce(p.process_subject, d2.subject) AS from_subject,
    p.subject AS to_subject,
    coalesce(p.process_message_id, d2.message_id) AS from_message_id,
    p.message_id AS to_message_id,
    coalesce(p.process_consumer, d2.consumer) AS consumer,
    p.producer_service,
    p.published_at,
    p.parent_span_id IS NULL OR p.process_span_id IS NOT NULL OR mid.span_id IS NOT NULL
        AS cause_seen,
    -- what it was made in is known to start the run: no parent, or a parent (no
    -- consumer's processing) that has none itself (an app's request span)
    p.process_span_id IS NULL
        AND (p.parent_span_id IS NULL OR (mid.span_id IS NOT NULL AND mid.parent_span_id IS NULL))
        AS starts_run
FROM caused AS p
LEFT JOIN mid ON mid.span_key = p.parent_key AND mid.span_id = p.parent_span_id
LEFT JOIN (
    -- only the process spans a handler's own span is the child of (usually none)
    SELECT * FROM delivery_spans
    WHERE operation = 'process' AND span_key IN (SELECT parent_key FROM mid)
) AS d2 ON d2.span_key = mid.parent_key AND d2.span_id = mid.parent_span_id;
