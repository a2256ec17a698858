-- Merge the small segments of one closed partition of a signal table (heartbeats,
-- bus_events, rejected, consumer_lag) into one, rows as they are: one segment per
-- collector flush would otherwise pile up (one a second) and every reader would
-- open them all.
-- Parameters: the input files, the temporary output path.
COPY (
    SELECT *
    FROM read_parquet(?, union_by_name = true, hive_partitioning = false)
) TO ? (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)
