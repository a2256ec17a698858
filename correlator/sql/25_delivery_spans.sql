-- Consumer-side spans (receive, process, settle), each tied to the message it
-- handles: through its span link or parent when that is a publish span (any
-- OpenTelemetry NATS instrumentation), else through its message id (ours), else,
-- for a span that names neither (a settle span of another instrumentation),
-- through the consumer span it is the child of.
-- Settle spans that ack are left out: an ack says nothing the process span it
-- follows does not, and they are a quarter of all consumer spans (nak, term and
-- other settlements are kept: dead_letters reads term).
-- received_at: when the store got the span (an orphan's grace counts from it).
-- producer_seen is false when the publish span never arrived; ref_key / ref_span_id
-- is the span it points at, so an orphan can be told from a span that points at
-- nothing. Joins on span keys also compare the span id (a hash collision never pairs
-- the wrong spans). One pass with no intermediate copy: on 1M spans, copying wide
-- rows through a materialized step cost more than the joins.
CREATE OR REPLACE VIEW delivery_spans AS
WITH parent_consumers AS (
    -- the consumer spans that message-less consumer spans are children of (usually
    -- none: our spans all name their message)
    SELECT span_key, span_id, ref_key, link_span_id, parent_span_id, message_id, subject
    FROM workflow_spans
    WHERE span_key IN (
        SELECT parent_key FROM workflow_spans
        WHERE message_id IS NULL AND parent_key IS NOT NULL
            AND (operation IN ('receive', 'process')
                OR (operation = 'settle' AND lower(split_part(name, ' ', 1)) <> 'ack')
                OR (operation IS NULL AND kind = 'consumer'))
    )
),
parent_spans AS (
    -- with their message: the publishes they point at are looked up among only
    -- those they point at (a join on every publish built a hash table of them all)
    SELECT
        c.span_key,
        c.span_id,
        coalesce(p.message_id, c.message_id) AS message_id,
        coalesce(c.subject, p.subject) AS subject,
        p.span_key IS NOT NULL AS ref_is_publish
    FROM parent_consumers AS c
    LEFT JOIN (
        SELECT * FROM publish_spans
        WHERE span_key IN (SELECT ref_key FROM parent_consumers)
    ) AS p
        ON p.span_key = c.ref_key AND p.span_id = coalesce(c.link_span_id, c.parent_span_id)
),
parents AS (
    -- whether their message was published: looked up among the published with the
    -- few parents on the side a join builds its hash table from
    SELECT
        *,
        ref_is_publish OR message_id IN (
            SELECT m.message_id FROM published_messages AS m
            SEMI JOIN parent_spans AS b USING (message_id)
        ) AS published
    FROM parent_spans
),
resolved AS (
    SELECT
        c.*,
        coalesce(c.link_span_id, c.parent_span_id) AS ref_span_id,
        p.span_key IS NOT NULL AS ref_is_publish,
        p.message_id AS ref_message_id,
        p.subject AS ref_subject,
        m.message_id IS NOT NULL AS id_is_published,
        -- no publish pointed at and no message named: the parent's message
        p.span_key IS NULL AND c.message_id IS NULL AS by_parent,
        par.message_id AS parent_message_id,
        par.subject AS parent_subject,
        par.published AS parent_published
    FROM workflow_spans AS c
    LEFT JOIN publish_spans AS p
        ON p.span_key = c.ref_key AND p.span_id = coalesce(c.link_span_id, c.parent_span_id)
    LEFT JOIN published_messages AS m ON m.message_id = c.message_id
    LEFT JOIN parents AS par ON par.span_key = c.parent_key AND par.span_id = c.parent_span_id
    WHERE c.operation IN ('receive', 'process')
        OR (c.operation = 'settle' AND lower(split_part(c.name, ' ', 1)) <> 'ack')
        OR (c.operation IS NULL AND c.kind = 'consumer')
)
SELECT
    workflow_id,
    trace_id,
    span_id,
    span_key,
    ref_key,
    ref_span_id,
    coalesce(operation, 'process') AS operation,
    CASE WHEN operation = 'settle' THEN lower(split_part(name, ' ', 1)) END AS settlement,
    -- the span a settle span settles: its parent, the attempt (null for the others)
    CASE WHEN operation = 'settle' THEN parent_key END AS settled_key,
    CASE WHEN operation = 'settle' THEN parent_span_id END AS settled_span_id,
    service_name,
    service_instance_id,
    consumer,
    CASE
        WHEN by_parent THEN coalesce(subject, parent_subject)
        ELSE coalesce(subject, ref_subject)
    END AS subject,
    CASE
        WHEN by_parent THEN coalesce(parent_message_id, ref_span_id, span_id)
        ELSE coalesce(ref_message_id, message_id)
    END AS message_id,
    CASE
        WHEN by_parent THEN coalesce(parent_published, false)
        ELSE ref_is_publish OR id_is_published
    END AS producer_seen,
    start_time,
    end_time,
    duration_ms,
    status_code,
    status_message,
    nak_delay_ms,
    received_at
FROM resolved;
