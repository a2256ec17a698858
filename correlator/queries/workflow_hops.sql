-- The waterfall of one workflow: every processing attempt of each message by each
-- consumer, with its queue wait apart from its processing time. given_back: 'nak' or
-- 'term' when the handler settled the attempt so (a settle span its child), though
-- it may have returned without raising: it processed nothing (deliveries_seen).
WITH given_back AS (
    SELECT trace_id, settled_span_id AS span_id, min(settlement) AS settlement
    FROM delivery_spans
    WHERE settlement IN ('nak', 'term') AND settled_span_id IS NOT NULL
    GROUP BY ALL
)
SELECT h.subject, h.producer_service, h.consumer, h.consumer_service, h.message_id,
       h.published_at, h.started_at, h.ended_at, h.queue_wait_ms, h.processing_ms,
       h.attempt, h.status_code, g.settlement AS given_back, h.clock_skew
FROM hops AS h
LEFT JOIN given_back AS g USING (trace_id, span_id)
WHERE h.workflow_id = $workflow_id
ORDER BY coalesce(h.published_at, h.started_at), h.started_at;
