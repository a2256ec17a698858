-- Service heartbeats from choreo.heartbeat.<service>, with their counters.
-- Each once: while compaction's inputs stay beside its output for their grace
-- period, an hour's beats are listed twice (it partitions on "at", so a filter on
-- time is pushed below it).
CREATE OR REPLACE VIEW heartbeats AS
SELECT *
FROM read_parquet('{store}/heartbeats/**/*.parquet', union_by_name = true, hive_partitioning = false)
QUALIFY row_number() OVER (PARTITION BY service, instance, "at") = 1;
