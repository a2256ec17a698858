-- orphan: a consumer span points at a producer span that never arrived (after
-- orphan_grace_s, spans travel in batches: counted from the consumer span's start, or
-- from when the store got it if later). When a service that publishes that
-- subject reported dropping spans about then, the finding is a telemetry_gap
-- instead: the telemetry is incomplete, the workflow is not to blame.
CREATE OR REPLACE TEMP TABLE d_orphan_findings AS
WITH unpublished AS (
    -- consumer spans whose message has no publish span (few)
    SELECT * FROM delivery_spans
    WHERE operation IN ('receive', 'process') AND NOT producer_seen AND ref_key IS NOT NULL
),
pointed_at AS (
    -- the spans they point at that did arrive (some other kind of span): only those
    -- are looked up among all spans
    SELECT span_key, span_id FROM workflow_spans
    WHERE span_key IN (SELECT ref_key FROM unpublished)
),
orphans AS (
    SELECT
        d.message_id,
        any_value(d.workflow_id) AS workflow_id,
        any_value(d.trace_id) AS trace_id,
        any_value(d.subject) AS subject,
        any_value(d.consumer) AS consumer,
        any_value(d.service_name) AS consumer_service,
        min(d.start_time) AS since,
        -- the grace counts from when the store got it too: a consumer span exported
        -- late has its producer's span as close behind it as any other
        greatest(min(d.start_time), min(d.received_at)) AS grace_from
    FROM unpublished AS d
    ANTI JOIN pointed_at AS r ON r.span_key = d.ref_key AND r.span_id = d.ref_span_id
    GROUP BY d.message_id
),
lost_spans AS (
    -- per orphan and instance of a service that publishes its subject: the spans its
    -- exporter dropped within a step's deadline of the consumer span, either side (the
    -- publish came before that span, by a queue wait the deadline bounds; its drop is
    -- told by a heartbeat after it). Drops told long before or long after say nothing
    -- of this span: a running total stays above zero, and an orphan judged once must
    -- not turn into a telemetry gap on a later pass
    SELECT
        o.message_id,
        h.service,
        h.instance,
        coalesce(max(h.spans_dropped) FILTER (WHERE epoch_us(h."at") <= epoch_us(o.since)
            + coalesce(st.deadline_s, $min_deadline_s) * 1e6), 0) AS dropped_by_then,
        coalesce(max(h.spans_dropped) FILTER (
            WHERE epoch_us(h."at")
                < epoch_us(o.since) - coalesce(st.deadline_s, $min_deadline_s) * 1e6
        ), 0) AS dropped_before
    FROM orphans AS o
    JOIN model_producers AS p ON p.subject = o.subject
    LEFT JOIN model_steps AS st ON st.subject = o.subject AND st.consumer = o.consumer
    JOIN heartbeats AS h ON h.service = p.producer_service
    WHERE h."at" <= CAST($now AS TIMESTAMPTZ)
    GROUP BY o.message_id, h.service, h.instance
),
gaps AS (
    SELECT message_id, arg_max(service, dropped) AS service, max(dropped) AS dropped
    FROM (
        SELECT message_id, service, sum(dropped_by_then - dropped_before) AS dropped
        FROM lost_spans
        GROUP BY message_id, service
    )
    WHERE dropped > 0
    GROUP BY message_id
)
SELECT
    CASE WHEN g.service IS NULL THEN 'orphan' ELSE 'telemetry_gap' END AS kind,
    CASE WHEN g.service IS NULL THEN 'producer_span_missing' ELSE 'spans_dropped' END
        AS root_cause,
    o.workflow_id,
    w.workflow_type,
    o.trace_id,
    coalesce(g.service, o.consumer_service) AS service,
    o.subject,
    o.message_id,
    o.subject AS step,
    o.consumer,
    o.since,
    (epoch_us(CAST($now AS TIMESTAMPTZ)) - epoch_us(o.since)) / 1e6 AS waited_s,
    g.dropped AS spans_dropped
FROM orphans AS o
LEFT JOIN gaps AS g USING (message_id)
LEFT JOIN d_workflows AS w USING (workflow_id)
WHERE (epoch_us(CAST($now AS TIMESTAMPTZ)) - epoch_us(o.grace_from)) / 1e6 >= $orphan_grace_s;
