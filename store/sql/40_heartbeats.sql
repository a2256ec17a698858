-- Service heartbeats from choreo.heartbeat.<service>, with their counters.
CREATE OR REPLACE VIEW heartbeats AS
SELECT *
FROM read_parquet('{store}/heartbeats/**/*.parquet', union_by_name = true, hive_partitioning = false);
