-- The hops that hurt most: drops first, then errors, then the slow tail.
SELECT coalesce(producer_service, '(producer unknown)') AS producer_service, subject,
       consumer_service, messages, drop_rate, error_rate, round(p50_ms, 1) AS p50_ms,
       round(p95_ms, 1) AS p95_ms, round(p99_ms, 1) AS p99_ms
FROM edges
ORDER BY drop_rate DESC NULLS LAST, error_rate DESC NULLS LAST, p95_ms DESC NULLS LAST
LIMIT $limit;
