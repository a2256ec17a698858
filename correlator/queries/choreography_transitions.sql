-- The choreography model's transitions (which event follows which), by source.
SELECT workflow_type, from_subject, to_subject, support, terminal, source
FROM choreography_follows
ORDER BY workflow_type, from_subject NULLS FIRST, to_subject, source;
