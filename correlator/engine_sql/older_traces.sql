-- Each trace of the segments a resumed cold pass does not judge again ($older),
-- once: its workflow, when its spans came, and the traces they link to. The pass
-- marks those the workflows it judges continue (straddles, straddlers.py) and reads
-- their spans too; the watcher remembers the others as stored (stored_ids.py). A
-- narrow scan, kept as 64-bit hashes of the ids (as stored_ids.py keeps them): a
-- week of spans at 1k/s is some 60M traces (and grouped by the hash: twice as fast
-- as by the hex id). A hash collision only reads one more trace along with those
-- marked.
CREATE OR REPLACE TEMP TABLE older_traces AS
SELECT
    hash(trace_id) AS trace_key,
    CASE WHEN max(workflow_id) IS NOT NULL THEN hash(max(workflow_id)) END AS workflow_key,
    min(received_at) AS first_received_at,
    max(received_at) AS last_received_at,
    list(DISTINCT hash(link_trace_id)) FILTER (WHERE link_trace_id <> trace_id) AS links,
    false AS straddles
FROM read_parquet($older, union_by_name = true, hive_partitioning = false)
GROUP BY trace_key
