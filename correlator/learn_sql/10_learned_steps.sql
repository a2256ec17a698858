-- Expected consumers of each subject and their step latency (publish to end of
-- processing), from every successful processing seen.
CREATE OR REPLACE TEMP TABLE learned_steps AS
SELECT
    subject,
    consumer,
    any_value(consumer_service) AS consumer_service,
    count(*) AS samples,
    quantile_cont(latency_ms, 0.5) AS p50_ms,
    quantile_cont(latency_ms, 0.95) AS p95_ms,
    quantile_cont(latency_ms, 0.99) AS p99_ms
FROM hops
WHERE status_code <> 'error' AND latency_ms IS NOT NULL AND subject IS NOT NULL
GROUP BY subject, consumer;
