-- Marks the older traces (older_traces) that belong to a workflow the pass judges:
-- those the judged segments name or link to, or that share a workflow with them
-- (straddling_seeds); then, run again with the marked ones as seeds until it marks
-- none, those that share a workflow with a marked one, or that span links join to
-- one, either way (straddlers.py).
UPDATE older_traces SET straddles = true
WHERE NOT straddles AND (
    trace_key IN (SELECT trace_key FROM straddling_seeds)
    OR workflow_key IN (SELECT workflow_key FROM straddling_seeds)
    OR trace_key IN (
        SELECT trace_key FROM (
            SELECT trace_key, unnest(links) AS linked FROM older_traces WHERE links IS NOT NULL
        )
        WHERE linked IN (SELECT trace_key FROM straddling_seeds)
    )
)
