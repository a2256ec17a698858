-- The choreography map: producer -> subject -> consumer, with traffic and health.
SELECT producer_service, subject, consumer_service, messages,
       p50_ms, p95_ms, p99_ms, error_rate, drop_rate
FROM edges
ORDER BY subject, producer_service, consumer_service;
