-- How many runs the store holds, by status and workflow type: what says, when a
-- filter of `choreoscope workflows` matched nothing, what the store does hold.
SELECT status, workflow_type, count(*) AS runs
FROM workflows
GROUP BY ALL;
