-- Every span segment as written, duplicates included (the bus is at-least-once).
-- {store} is the store's absolute path, substituted when the view is created:
-- DDL cannot bind parameters, and the path is quoted by the loader.
CREATE OR REPLACE VIEW spans_raw AS
SELECT *
FROM read_parquet('{store}/spans/**/*.parquet', union_by_name = true, hive_partitioning = false);

-- One row per span: exactly-once over an at-least-once bus. The first copy to
-- arrive wins; copies are identical apart from their ingest metadata.
-- start_time and workflow_id are in the window's partition although (trace_id,
-- span_id) alone identifies a span: copies of a span share them, and DuckDB pushes
-- a filter on a partition column below the window, so "the last 5 minutes" or
-- "workflow X" reads only those rows instead of deduplicating the whole store
-- (measured on 2M spans: 0.9 s -> 2 ms, 0.35 s -> 30 ms; full scans unchanged).
CREATE OR REPLACE VIEW spans AS
SELECT *
FROM spans_raw
QUALIFY row_number() OVER (
    PARTITION BY trace_id, span_id, start_time, workflow_id
    ORDER BY received_at
) = 1;
