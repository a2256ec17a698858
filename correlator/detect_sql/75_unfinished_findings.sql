-- stalled with no message to blame: the workflow's last event was handled, nothing
-- more is pending, yet it never reached a terminal event of its type.
CREATE OR REPLACE TEMP TABLE d_unfinished_findings AS
SELECT
    'stalled' AS kind,
    'no_next_event' AS root_cause,
    s.workflow_id,
    s.workflow_type,
    s.trace_id,
    substr(s.waiting_on, length('after ') + 1) AS subject,
    s.waiting_on AS step,
    s.last_activity_at AS since,
    (epoch_us(CAST($now AS TIMESTAMPTZ)) - epoch_us(s.last_activity_at)) / 1e6 AS waited_s
FROM d_workflow_status AS s
WHERE s.root_cause = 'no_next_event';
