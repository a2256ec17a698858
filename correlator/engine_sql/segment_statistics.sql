-- What the span segments' column statistics tell without reading a span: the newest
-- received_at, and whether every span carries choreo.workflow.id (then nothing is
-- inherited through span links, and inherited_workflows need not be computed).
-- newest_known is false when a segment with spans kept no statistics for
-- received_at (the caller then scans); a row group without a workflow_id column or
-- without its null count counts as lacking ids. $files: the segments of the pass.
WITH row_groups AS (
    SELECT
        file_name,
        row_group_id,
        any_value(row_group_num_rows) AS span_count,
        max(TRY_CAST(stats_max AS TIMESTAMPTZ)) FILTER (WHERE path_in_schema = 'received_at')
            AS newest,
        bool_or(path_in_schema = 'workflow_id' AND stats_null_count = 0) AS all_carry_ids
    FROM parquet_metadata($files)
    GROUP BY file_name, row_group_id
)
SELECT
    coalesce(bool_and(newest IS NOT NULL) FILTER (WHERE span_count > 0), true) AS newest_known,
    max(newest) AS newest,
    coalesce(bool_and(all_carry_ids) FILTER (WHERE span_count > 0), true) AS all_carry_ids
FROM row_groups
