-- Each workflow's status:
--   stalled    waiting past a step's deadline (dropped, hung, dead-lettered, consumer
--              down), or, with known terminal events, idle past the floor deadline
--              without reaching one;
--   failed     a step failed for good;
--   in_flight  deliveries still pending within their deadlines;
--   completed  nothing pending.
-- waiting_on names the step ("subject → consumer") it waits on longest.
CREATE OR REPLACE TEMP TABLE d_workflow_status AS
WITH stuck AS (
    SELECT
        workflow_id,
        arg_min(subject || ' → ' || consumer, since) AS waiting_on,
        arg_min(root_cause, since) AS root_cause
    FROM d_delivery_findings
    WHERE kind IN ('dropped', 'hung', 'stalled', 'dead_lettered')
    GROUP BY workflow_id
),
failed AS (
    SELECT workflow_id, arg_min(subject || ' → ' || consumer, since) AS waiting_on
    FROM d_delivery_findings
    WHERE kind = 'failed'
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
reached AS (
    SELECT DISTINCT p.workflow_id
    FROM publish_spans AS p
    JOIN d_workflows AS w USING (workflow_id)
    JOIN terminals AS t ON t.workflow_type = w.workflow_type AND t.subject = p.subject
),
last_event AS (
    SELECT workflow_id, arg_max(subject, published_at) AS subject
    FROM publish_spans
    WHERE subject NOT LIKE 'dlq.%'
    GROUP BY workflow_id
),
unfinished AS (
    SELECT w.workflow_id, 'after ' || l.subject AS waiting_on
    FROM d_workflows AS w
    JOIN last_event AS l USING (workflow_id)
    WHERE w.model_trusted
        AND w.workflow_type IN (SELECT workflow_type FROM terminals)
        AND w.workflow_id NOT IN (SELECT workflow_id FROM reached)
        AND (epoch_us(CAST($now AS TIMESTAMPTZ)) - epoch_us(w.last_activity_at)) / 1e6
            > $min_deadline_s
)
SELECT
    w.workflow_id,
    w.workflow_type,
    CASE
        WHEN stuck.workflow_id IS NOT NULL THEN 'stalled'
        WHEN failed.workflow_id IS NOT NULL THEN 'failed'
        WHEN pending.workflow_id IS NOT NULL THEN 'in_flight'
        WHEN unfinished.workflow_id IS NOT NULL THEN 'stalled'
        ELSE 'completed'
    END AS status,
    coalesce(stuck.waiting_on, failed.waiting_on, pending.waiting_on, unfinished.waiting_on)
        AS waiting_on,
    CASE
        WHEN stuck.workflow_id IS NOT NULL THEN stuck.root_cause
        WHEN failed.workflow_id IS NOT NULL THEN 'failed'
        WHEN pending.workflow_id IS NULL AND unfinished.workflow_id IS NOT NULL
            THEN 'no_next_event'
    END AS root_cause,
    CAST($now AS TIMESTAMPTZ) AS evaluated_at,
    w.trace_id,
    w.last_activity_at
FROM d_workflows AS w
LEFT JOIN stuck USING (workflow_id)
LEFT JOIN failed USING (workflow_id)
LEFT JOIN pending USING (workflow_id)
LEFT JOIN unfinished USING (workflow_id);
