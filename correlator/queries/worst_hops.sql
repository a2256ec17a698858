-- The hops that hurt most: drops first, then errors, then the slow tail.
SELECT producer_service, subject, consumer_service, messages,
       drop_rate, error_rate, p50_ms, p95_ms, p99_ms
FROM edges
ORDER BY drop_rate DESC NULLS LAST, error_rate DESC NULLS LAST, p95_ms DESC NULLS LAST
LIMIT $limit;
