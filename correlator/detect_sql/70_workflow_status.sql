-- Each workflow's status:
--   stalled    waiting past a step's deadline (dropped, hung, dead-lettered, consumer
--              down), or, with known terminal events, idle past the floor deadline
--              without reaching one;
--   failed     a step failed for good;
--   in_flight  deliveries still pending within their deadlines;
--   completed  nothing pending.
-- waiting_on names the step ("subject → consumer") it waits on longest.
CREATE OR REPLACE TEMP TABLE d_workflow_status AS
WITH waits AS (
    -- the deliveries a workflow is stuck on, and those that failed for good
    SELECT
        workflow_id,
        count(*) FILTER (WHERE kind <> 'failed') > 0 AS stuck,
        arg_min(subject || ' → ' || consumer, since) FILTER (WHERE kind <> 'failed')
            AS stuck_on,
        arg_min(root_cause, since) FILTER (WHERE kind <> 'failed') AS stuck_cause,
        count(*) FILTER (WHERE kind = 'failed') > 0 AS failed,
        arg_min(subject || ' → ' || consumer, since) FILTER (WHERE kind = 'failed')
            AS failed_on
    FROM d_delivery_findings
    WHERE kind IN ('dropped', 'hung', 'stalled', 'dead_lettered', 'failed')
    GROUP BY workflow_id
),
pending AS (
    SELECT workflow_id, arg_min(subject || ' → ' || consumer, since) AS waiting_on
    FROM d_deliveries
    WHERE state <> 'done'
    GROUP BY workflow_id
),
terminals AS (
    SELECT DISTINCT workflow_type, to_subject AS subject
    FROM model_follows
    WHERE terminal
),
events AS (
    -- per workflow, in one pass over its publishes: its last event (dead letters
    -- aside), and whether it reached a terminal event of its type. A message handled
    -- whose publish span never arrived (its producer is not traced) is an event too,
    -- from when a consumer's span first showed it: a run of such a producer whose
    -- handler published nothing is unfinished, not completed
    SELECT
        p.workflow_id,
        arg_max(p.subject, p.published_at) FILTER (WHERE NOT is_dead_letter_subject(p.subject))
            AS last_subject,
        bool_or(t.subject IS NOT NULL) AS reached
    FROM (
        SELECT workflow_id, subject, published_at FROM publish_spans
        UNION ALL
        SELECT workflow_id, subject, start_time FROM delivery_spans WHERE NOT producer_seen
    ) AS p
    JOIN d_workflows AS w USING (workflow_id)
    LEFT JOIN terminals AS t ON t.workflow_type = w.workflow_type AND t.subject = p.subject
    GROUP BY p.workflow_id
),
unfinished AS (
    SELECT w.workflow_id, 'after ' || e.last_subject AS waiting_on
    FROM d_workflows AS w
    JOIN events AS e USING (workflow_id)
    WHERE w.model_trusted
        AND w.workflow_type IN (SELECT workflow_type FROM terminals)
        AND NOT e.reached
        AND e.last_subject IS NOT NULL
        AND (epoch_us(CAST($now AS TIMESTAMPTZ)) - epoch_us(w.last_activity_at)) / 1e6
            > $min_deadline_s
)
SELECT
    w.workflow_id,
    w.workflow_type,
    CASE
        WHEN f.stuck THEN 'stalled'
        WHEN f.failed THEN 'failed'
        WHEN pending.workflow_id IS NOT NULL THEN 'in_flight'
        WHEN unfinished.workflow_id IS NOT NULL THEN 'stalled'
        ELSE 'completed'
    END AS status,
    coalesce(f.stuck_on, f.failed_on, pending.waiting_on, unfinished.waiting_on) AS waiting_on,
    CASE
        WHEN f.stuck THEN f.stuck_cause
        WHEN f.failed THEN 'failed'
        WHEN pending.workflow_id IS NULL AND unfinished.workflow_id IS NOT NULL
            THEN 'no_next_event'
    END AS root_cause,
    CAST($now AS TIMESTAMPTZ) AS evaluated_at,
    w.trace_id,
    w.last_activity_at
FROM d_workflows AS w
LEFT JOIN waits AS f USING (workflow_id)
LEFT JOIN pending USING (workflow_id)
LEFT JOIN unfinished USING (workflow_id);
