-- Expected consumers of each subject and their step latency (publish to the end of
-- the first successful processing), from every message a consumer processed.
CREATE OR REPLACE TEMP TABLE learned_steps AS
SELECT
    subject,
    consumer,
    any_value(service) AS consumer_service,
    count(*) AS samples,
    quantile_cont(latency_ms, 0.5) AS p50_ms,
    quantile_cont(latency_ms, 0.95) AS p95_ms,
    quantile_cont(latency_ms, 0.99) AS p99_ms
FROM deliveries_seen
WHERE successes > 0 AND latency_ms IS NOT NULL AND subject IS NOT NULL
GROUP BY subject, consumer;
