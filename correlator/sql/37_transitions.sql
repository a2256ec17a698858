-- Which event caused which. A publish made while a message was being delivered
-- (its parent, or an ancestor through the handler's own spans, up to 16 spans up,
-- is that message's process span, or another of its delivery spans: a receive, a
-- settle that is no ack) follows that message. A publish caused by no message
-- starts the workflow: from_subject is null. cause_seen is false while a span on the
-- way up has not arrived (a handler's spans are exported as they end, its process
-- span last): its cause is unknown yet, not "no message".
-- starts_run: the publish was made outside any handler: the way up ends at a span
-- with no parent (an app's request span), or the publish has none itself.
CREATE OR REPLACE VIEW transitions AS
WITH RECURSIVE caused AS (
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
up(pub_key, pub_id, at_key, at_id, depth) AS (
    -- from the publishes whose parent is no process span (usually none of ours), up
    -- through spans that are no consumer's processing, to the span where the way
    -- ends: a process span, a span with no parent, or one that has not arrived.
    -- Spans are joined with the few steps on the side a join builds its table from
    SELECT span_key, span_id, parent_key, parent_span_id, 1
    FROM caused
    WHERE process_span_id IS NULL AND parent_key IS NOT NULL
    UNION ALL
    SELECT u.pub_key, u.pub_id, s.parent_key, s.parent_span_id, u.depth + 1
    FROM workflow_spans AS s
    JOIN up AS u ON s.span_key = u.at_key AND s.span_id = u.at_id
    WHERE s.parent_key IS NOT NULL
        AND u.depth < 16  -- a deeper chain, or a loop, ends as "known, no cause"
        -- a delivery span (as delivery_spans counts them) ends the way up
        AND NOT coalesce(
            s.operation IN ('receive', 'process')
                OR (s.operation = 'settle' AND lower(split_part(s.name, ' ', 1)) <> 'ack')
                OR (s.operation IS NULL AND s.kind = 'consumer'),
            false
        )
),
ends AS (
    -- the last step of each way up (one row: both ids from it)
    SELECT pub_key, pub_id, arg_max({'key': at_key, 'id': at_id}, depth) AS at_span
    FROM up
    GROUP BY pub_key, pub_id
),
ended AS (
    SELECT
        e.pub_key,
        e.pub_id,
        s.span_id IS NOT NULL AS arrived,
        s.parent_span_id IS NULL AS is_root,
        d.span_id IS NOT NULL AS delivered,
        d.subject,
        d.message_id,
        d.consumer
    FROM (SELECT pub_key, pub_id, at_span.key AS at_key, at_span.id AS at_id FROM ends) AS e
    LEFT JOIN (
        SELECT span_key, span_id, parent_span_id FROM workflow_spans
        WHERE span_key IN (SELECT at_span.key FROM ends)
    ) AS s ON s.span_key = e.at_key AND s.span_id = e.at_id
    LEFT JOIN (
        SELECT * FROM delivery_spans WHERE span_key IN (SELECT at_span.key FROM ends)
    ) AS d ON d.span_key = e.at_key AND d.span_id = e.at_id
)
SELECT
    p.workflow_id,
    coalesce(p.process_subject, e.subject) AS from_subject,
    p.subject AS to_subject,
    coalesce(p.process_message_id, e.message_id) AS from_message_id,
    p.message_id AS to_message_id,
    coalesce(p.process_consumer, e.consumer) AS consumer,
    p.producer_service,
    p.published_at,
    p.parent_span_id IS NULL OR p.process_span_id IS NOT NULL OR coalesce(e.arrived, false)
        AS cause_seen,
    p.process_span_id IS NULL
        AND (p.parent_span_id IS NULL
            OR coalesce(e.arrived AND e.is_root AND NOT e.delivered, false)) AS starts_run
FROM caused AS p
LEFT JOIN ended AS e ON e.pub_key = p.span_key AND e.pub_id = p.span_id;
