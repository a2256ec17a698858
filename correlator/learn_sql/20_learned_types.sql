-- Workflow types: the subject of each workflow's first event, and how many
-- workflows of that type were seen.
CREATE OR REPLACE TEMP TABLE learned_types AS
WITH firsts AS (
    SELECT workflow_id, arg_min(subject, published_at) AS first_subject
    FROM publish_spans
    WHERE subject NOT LIKE 'dlq.%'
    GROUP BY workflow_id
)
SELECT first_subject AS workflow_type, first_subject AS start_subject, count(*) AS workflows
FROM firsts
WHERE first_subject IS NOT NULL
GROUP BY first_subject;
