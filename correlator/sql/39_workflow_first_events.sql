-- The subject of each workflow's first event (dead letters aside): learning names a
-- workflow's type after it, unless choreography.yaml declares one that starts with it.
-- A publish known to start the run (transitions.starts_run: made in no handler, at
-- the top of its trace) comes before the others, whatever the clocks say: a
-- downstream host whose clock runs behind would otherwise stamp its publish first
-- and give the run the wrong type. Time orders the rest.
CREATE OR REPLACE VIEW workflow_first_events AS
SELECT
    workflow_id,
    -- ordered by (not known to start the run, time): false sorts before true
    arg_min(to_subject, (NOT starts_run, published_at)) AS first_subject
FROM transitions
WHERE NOT is_dead_letter_subject(to_subject)
GROUP BY workflow_id;
