-- The choreography map: producer -> subject -> consumer, with traffic and health.
-- Latencies to the tenth of a millisecond (a reader wants 10399.6, not 10399.5966).
SELECT coalesce(producer_service, '(producer unknown)') AS producer_service, subject,
       consumer_service, messages, round(p50_ms, 1) AS p50_ms, round(p95_ms, 1) AS p95_ms,
       round(p99_ms, 1) AS p99_ms, error_rate, drop_rate
FROM edges
ORDER BY subject, producer_service, consumer_service;
