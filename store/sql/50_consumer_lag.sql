-- JetStream consumer lag, sampled by the collector every few seconds: one row per
-- consumer per sample. A consumer's newest sample is its lag now. Each once, as
-- heartbeats (compaction's grace period lists an hour twice).
CREATE OR REPLACE VIEW consumer_lag AS
SELECT *
FROM read_parquet('{store}/consumer_lag/**/*.parquet', union_by_name = true, hive_partitioning = false)
QUALIFY row_number() OVER (PARTITION BY stream, consumer, "at") = 1;
