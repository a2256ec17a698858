-- JetStream advisories the collector keeps: max deliveries, terminated, naked.
CREATE OR REPLACE VIEW bus_events AS
SELECT *
FROM read_parquet('{store}/bus_events/**/*.parquet', union_by_name = true, hive_partitioning = false);
