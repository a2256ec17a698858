-- Workflow types, for the filter's choices: from the correlator's verdicts and its
-- model (both small findings files), not from a pass over every span.
SELECT DISTINCT workflow_type FROM (
    SELECT workflow_type FROM workflow_status
    UNION ALL
    SELECT workflow_type FROM choreography_follows
)
WHERE workflow_type IS NOT NULL
ORDER BY 1;
