-- Workflow types seen, for the filter's choices.
SELECT DISTINCT workflow_type FROM workflows WHERE workflow_type IS NOT NULL ORDER BY 1;
