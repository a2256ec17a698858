-- Input the collector refused, with the reason and the raw bytes (capped).
-- Each once, as bus_events (compaction's grace period lists an hour twice); two
-- spans of one payload refused for one reason, at one received_at, are two (their
-- raw bytes differ).
CREATE OR REPLACE VIEW rejected AS
SELECT *
FROM read_parquet('{store}/rejected/**/*.parquet', union_by_name = true, hive_partitioning = false)
QUALIFY row_number() OVER (PARTITION BY received_at, source, reason, size, hash(raw)) = 1;
