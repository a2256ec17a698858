-- composed: created with the views it reads inlined, each computed once per query
-- (store/view_composition.py).
-- The service graph: producer → subject → consumer, with hop latency quantiles
-- (publish to end of processing), the share of attempts that raised, and the share
-- of messages the correlator found dropped on the way to that consumer.
CREATE OR REPLACE VIEW edges AS
WITH handled AS (
    SELECT
        producer_service,
        subject,
        consumer_service,
        count(DISTINCT message_id) AS messages,
        quantile_cont(latency_ms, 0.5) AS p50_ms,
        quantile_cont(latency_ms, 0.95) AS p95_ms,
        quantile_cont(latency_ms, 0.99) AS p99_ms,
        avg(CASE WHEN status_code = 'error' THEN 1.0 ELSE 0.0 END) AS error_rate
    FROM hops
    GROUP BY ALL
),
dropped AS (
    SELECT p.producer_service, a.subject, a.service AS consumer_service, count(*) AS dropped
    FROM anomalies AS a
    LEFT JOIN published_messages AS p USING (message_id)
    WHERE a.kind = 'dropped' AND a.resolved_at IS NULL  -- consumed late: not lost
    GROUP BY ALL
)
SELECT
    coalesce(h.producer_service, d.producer_service) AS producer_service,
    coalesce(h.subject, d.subject) AS subject,
    coalesce(h.consumer_service, d.consumer_service) AS consumer_service,
    coalesce(h.messages, 0) + coalesce(d.dropped, 0) AS messages,
    h.p50_ms,
    h.p95_ms,
    h.p99_ms,
    coalesce(h.error_rate, 0.0) AS error_rate,
    coalesce(d.dropped, 0) / (coalesce(h.messages, 0) + coalesce(d.dropped, 0)) AS drop_rate
FROM handled AS h
FULL OUTER JOIN dropped AS d
    ON d.producer_service IS NOT DISTINCT FROM h.producer_service
    AND d.subject = h.subject
    AND d.consumer_service = h.consumer_service;
