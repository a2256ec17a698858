-- Workflow types: the subject of each workflow's first event, and how many
-- workflows of that type were seen.
CREATE OR REPLACE TEMP TABLE learned_types AS
SELECT first_subject AS workflow_type, first_subject AS start_subject, count(*) AS workflows
FROM workflow_first_events
WHERE first_subject IS NOT NULL
GROUP BY first_subject;
