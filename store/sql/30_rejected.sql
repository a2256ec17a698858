-- Input the collector refused, with the reason and the raw bytes (capped).
-- Each once, as bus_events (compaction's grace period lists an hour twice).
CREATE OR REPLACE VIEW rejected AS
SELECT *
FROM read_parquet('{store}/rejected/**/*.parquet', union_by_name = true, hive_partitioning = false)
QUALIFY row_number() OVER (PARTITION BY received_at, source, reason, size) = 1;
