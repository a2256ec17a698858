-- Merge the small span segments of one closed partition into one: a single copy of
-- each span (the first to arrive, as the spans view picks), sorted by trace so that
-- a trace's spans sit in the same row groups. Parameters: the input files, the
-- temporary output path.
COPY (
    SELECT *
    FROM read_parquet(?, union_by_name = true, hive_partitioning = false)
    -- the same copies the spans view keeps (store/sql/10_spans.sql)
    QUALIFY row_number() OVER (
        PARTITION BY trace_id, span_id, start_time, workflow_id ORDER BY received_at
    ) = 1
    ORDER BY trace_id, start_time
) TO ? (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)
