-- The subject of each workflow's first event (dead letters aside): learning names a
-- workflow's type after it, unless choreography.yaml declares one that starts with it.
-- A publish with no parent span (nothing caused it) comes before those with one,
-- whatever the clocks say: a downstream host whose clock runs behind would otherwise
-- stamp its publish first and give the run the wrong type.
CREATE OR REPLACE VIEW workflow_first_events AS
SELECT
    workflow_id,
    -- ordered by (has a parent, time): false sorts before true
    arg_min(subject, (parent_span_id IS NOT NULL, published_at)) AS first_subject
FROM publish_spans
WHERE subject NOT LIKE 'dlq.%'
GROUP BY workflow_id;
