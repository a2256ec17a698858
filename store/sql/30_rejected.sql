-- Input the collector refused, with the reason and the raw bytes (capped).
CREATE OR REPLACE VIEW rejected AS
SELECT *
FROM read_parquet('{store}/rejected/**/*.parquet', union_by_name = true, hive_partitioning = false);
