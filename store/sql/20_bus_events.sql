-- JetStream advisories the collector keeps: max deliveries, terminated, naked.
-- Each once: while compaction's inputs stay beside its output for their grace
-- period, an hour's advisories are listed twice (advisories are few, so the window
-- costs little; it partitions on "at", so a filter on time is pushed below it).
CREATE OR REPLACE VIEW bus_events AS
SELECT *
FROM read_parquet('{store}/bus_events/**/*.parquet', union_by_name = true, hive_partitioning = false)
QUALIFY row_number() OVER (PARTITION BY kind, stream, consumer, stream_seq, "at") = 1;
