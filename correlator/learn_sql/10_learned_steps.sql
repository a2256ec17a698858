-- Expected consumers of each subject and their step latency (publish to the end of
-- the first successful processing), from every message a consumer processed.
-- expected_since: the publish time of the first message it processed. A consumer
-- group deployed on a subject that already had messages is expected to receive the
-- messages published from then on, not those published before it existed.
CREATE OR REPLACE TEMP TABLE learned_steps AS
SELECT
    subject,
    consumer,
    any_value(service) AS consumer_service,
    min(published_at) AS expected_since,
    count(*) AS samples,
    quantile_cont(latency_ms, 0.5) AS p50_ms,
    quantile_cont(latency_ms, 0.95) AS p95_ms,
    quantile_cont(latency_ms, 0.99) AS p99_ms
FROM deliveries_seen
WHERE successes > 0 AND latency_ms IS NOT NULL AND subject IS NOT NULL
GROUP BY subject, consumer;
