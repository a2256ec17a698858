-- The subject of each workflow's first event (dead letters aside): learning names a
-- workflow's type after it, unless choreography.yaml declares one that starts with it.
-- A publish no message caused (transitions: from_subject null, its cause seen) comes
-- before those a message caused or whose cause has not arrived yet, whatever the
-- clocks say: a downstream host whose clock runs behind would otherwise stamp its
-- publish first and give the run the wrong type. Time orders the rest.
CREATE OR REPLACE VIEW workflow_first_events AS
SELECT
    workflow_id,
    -- ordered by (caused or cause unknown, time): false sorts before true
    arg_min(to_subject, (from_subject IS NOT NULL OR NOT cause_seen, published_at))
        AS first_subject
FROM transitions
WHERE to_subject NOT LIKE 'dlq.%'
GROUP BY workflow_id;
