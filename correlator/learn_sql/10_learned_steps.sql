-- Expected consumers of each subject and their step latency (publish to the end of
-- the first successful processing), from every message a consumer processed.
-- expected_since: a consumer group deployed on a subject already in use is expected
-- to receive the messages published since the first one it processed, not those
-- published before it existed. A group whose first message came soon after the
-- subject's first (Thresholds.present_from_start_s, 10 minutes by default; as far
-- back as the store goes) is taken to have been there all along (null): the first
-- messages it missed are dropped, not before its time.
CREATE OR REPLACE TEMP TABLE learned_steps AS
SELECT
    subject,
    consumer,
    consumer_service,
    CASE WHEN first_processed > min(first_processed) OVER (PARTITION BY subject)
        + to_seconds($present_from_start_s)
        THEN first_processed END AS expected_since,
    samples,
    p50_ms,
    p95_ms,
    p99_ms
FROM (
    SELECT
        subject,
        consumer,
        any_value(service) AS consumer_service,
        min(published_at) AS first_processed,
        count(*) AS samples,
        quantile_cont(latency_ms, 0.5) AS p50_ms,
        quantile_cont(latency_ms, 0.95) AS p95_ms,
        quantile_cont(latency_ms, 0.99) AS p99_ms
    FROM deliveries_seen
    WHERE successes > 0 AND latency_ms IS NOT NULL AND subject IS NOT NULL
    GROUP BY subject, consumer
);
