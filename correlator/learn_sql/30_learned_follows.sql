-- The directly-follows graph of subjects per workflow type, with the number of
-- workflows each transition was seen in. A subject is terminal when nothing is
-- expected to consume it, or when at least a share of its messages processed
-- (Thresholds.terminal_share, 5 % by default) were where their workflow ended: no
-- further publish by any of their consumers, nor any later one in the workflow (a
-- branch that legitimately ends there; a sink consumer beside the others does not
-- count, nor a fan-in's results that only the last of leads on: the run goes on).
CREATE OR REPLACE TEMP TABLE learned_follows AS
WITH typed AS (
    SELECT t.*, w.first_subject AS workflow_type
    FROM transitions AS t
    JOIN workflow_first_events AS w USING (workflow_id)
    WHERE NOT is_dead_letter_subject(t.to_subject) AND t.cause_seen
),
followed AS (
    -- the messages something was published after (by any of their consumers)
    SELECT DISTINCT from_message_id AS message_id
    FROM transitions
    WHERE from_message_id IS NOT NULL AND NOT is_dead_letter_subject(to_subject)
),
last_published AS (
    SELECT workflow_id, max(published_at) AS published_at
    FROM transitions
    WHERE NOT is_dead_letter_subject(to_subject)
    GROUP BY workflow_id
),
leaf_share AS (
    -- per message processed: whether its workflow ended there: nothing was published
    -- after it by any of its consumers (a sink, an audit log or a metrics tap, handles
    -- every message and publishes nothing, which says nothing of whether the workflow
    -- ends there), nor anything in its workflow once it was handled (the results of
    -- a fan-in: only the last leads on, yet the run goes on after each)
    SELECT h.subject,
           avg(CASE WHEN f.message_id IS NULL
                   AND NOT coalesce(l.published_at > h.success_ended_at, false)
               THEN 1.0 ELSE 0.0 END) AS share
    FROM deliveries_seen AS h
    LEFT JOIN followed AS f USING (message_id)
    LEFT JOIN last_published AS l USING (workflow_id)
    WHERE h.successes > 0
    GROUP BY h.subject
)
SELECT
    typed.workflow_type,
    typed.from_subject,
    typed.to_subject,
    count(*) AS support,
    coalesce(any_value(l.share), 1.0) >= $terminal_share AS terminal
FROM (
    -- each workflow once per transition (a loop takes one several times): a DISTINCT
    -- before the join costs less than count(DISTINCT workflow_id) after it
    SELECT DISTINCT workflow_type, from_subject, to_subject, workflow_id FROM typed
) AS typed
LEFT JOIN leaf_share AS l ON l.subject = typed.to_subject
GROUP BY typed.workflow_type, typed.from_subject, typed.to_subject;
