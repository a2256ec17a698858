-- The subject of each workflow's first event (dead letters aside): learning names a
-- workflow's type after it, unless choreography.yaml declares one that starts with it.
CREATE OR REPLACE VIEW workflow_first_events AS
SELECT workflow_id, arg_min(subject, published_at) AS first_subject
FROM publish_spans
WHERE subject NOT LIKE 'dlq.%'
GROUP BY workflow_id;
