-- Workflows joined to this one by span links that cross into another workflow,
-- both ways (a batch consumer's span links to the messages it handled).
WITH own AS (
    SELECT trace_id, link_trace_id FROM workflow_spans WHERE workflow_id = $workflow_id
),
linked AS (
    SELECT 'links to' AS relation, link_trace_id AS trace_id
    FROM own
    WHERE link_trace_id IS NOT NULL
    UNION
    SELECT 'linked from', trace_id
    FROM workflow_spans
    WHERE link_trace_id IN (SELECT trace_id FROM own)
)
SELECT DISTINCT l.relation, t.workflow_id
FROM linked AS l
JOIN trace_workflows AS t USING (trace_id)
WHERE t.workflow_id <> $workflow_id
ORDER BY 1, 2;
