-- The subject of each workflow's first event (dead letters aside): learning names a
-- workflow's type after it, unless choreography.yaml declares one that starts with it.
-- A publish known to start the run (transitions.starts_run: made in no handler, at
-- the top of its trace) comes before the others, whatever the clocks say: a
-- downstream host whose clock runs behind would otherwise stamp its publish first
-- and give the run the wrong type. Time orders the rest.
-- A run whose producer is not traced, and that published nothing since but dead
-- letters, is named after the first event consumed (its deliveries whose publish
-- never arrived: few).
CREATE OR REPLACE VIEW workflow_first_events AS
WITH published AS (
    SELECT
        workflow_id,
        -- ordered by (not known to start the run, time): false sorts before true
        arg_min(to_subject, (NOT starts_run, published_at)) AS first_subject
    FROM transitions
    WHERE NOT is_dead_letter_subject(to_subject)
    GROUP BY workflow_id
)
SELECT * FROM published
UNION ALL
SELECT workflow_id, arg_min(subject, start_time) AS first_subject
FROM delivery_spans
WHERE NOT producer_seen AND NOT is_dead_letter_subject(subject)
    AND workflow_id NOT IN (SELECT workflow_id FROM published)
GROUP BY workflow_id;
