-- The directly-follows graph of subjects per workflow type, with the number of
-- workflows each transition was seen in. A subject is terminal when no consumer of
-- it ever publishes onward (nobody consumes it, or only sinks do), or when at least
-- 5 % of the messages those consumers processed published nothing further (a
-- branch that legitimately ends there).
CREATE OR REPLACE TEMP TABLE learned_follows AS
WITH typed AS (
    SELECT t.*, w.first_subject AS workflow_type
    FROM transitions AS t
    JOIN workflow_first_events AS w USING (workflow_id)
    WHERE t.to_subject NOT LIKE 'dlq.%' AND t.cause_seen
),
followed AS (
    SELECT DISTINCT from_message_id AS message_id, consumer
    FROM transitions
    WHERE from_message_id IS NOT NULL AND to_subject NOT LIKE 'dlq.%'
),
per_consumer AS (
    SELECT h.subject, h.consumer, count(*) AS handled, count(f.message_id) AS followed
    FROM deliveries_seen AS h
    LEFT JOIN followed AS f USING (message_id, consumer)
    WHERE h.successes > 0
    GROUP BY h.subject, h.consumer
),
leaf_share AS (
    -- over the consumers that publish onward after the subject at least once: a sink
    -- (an audit log, a metrics tap) handles every message and publishes nothing,
    -- which says nothing of whether the workflow ends there
    SELECT subject, 1.0 - sum(followed) / sum(handled) AS share
    FROM per_consumer
    WHERE followed > 0
    GROUP BY subject
)
SELECT
    typed.workflow_type,
    typed.from_subject,
    typed.to_subject,
    count(*) AS support,
    coalesce(any_value(l.share), 1.0) >= 0.05 AS terminal
FROM (
    -- each workflow once per transition (a loop takes one several times): a DISTINCT
    -- before the join costs less than count(DISTINCT workflow_id) after it
    SELECT DISTINCT workflow_type, from_subject, to_subject, workflow_id FROM typed
) AS typed
LEFT JOIN leaf_share AS l ON l.subject = typed.to_subject
GROUP BY typed.workflow_type, typed.from_subject, typed.to_subject;
