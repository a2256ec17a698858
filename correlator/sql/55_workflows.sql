-- One row per workflow run, live from the spans; its status comes from the
-- correlator's latest pass (in_flight until the correlator has judged it).
-- workflow_type: the correlator's verdict, else the declared workflow that starts
-- with the run's first event, else that event's subject: a run not judged yet does
-- not escape a filter by its declared name. (The first event is the earliest
-- publish here: the correlator's own, workflow_first_events, follows each publish's
-- cause, and cost every reader of this view ~45% more. A run not judged yet, whose
-- downstream clock runs behind, can read as a later event's type until its pass.)
CREATE OR REPLACE VIEW workflows AS
WITH w AS (
    SELECT
        workflow_id,
        min(start_time) AS started_at,
        max(coalesce(end_time, start_time)) AS last_activity_at,
        -- the first publish, else (a producer that is not traced) the first event
        -- consumed; dead letters aside, as in workflow_first_events
        coalesce(
            arg_min(subject, start_time) FILTER (
                WHERE (operation = 'send' OR (operation IS NULL AND kind = 'producer'))
                    AND NOT is_dead_letter_subject(subject)
            ),
            arg_min(subject, start_time) FILTER (
                WHERE operation IN ('receive', 'process') AND NOT is_dead_letter_subject(subject)
            )
        ) AS first_subject,
        list(DISTINCT service_name ORDER BY service_name) AS services,
        list(DISTINCT trace_id ORDER BY trace_id) AS trace_ids,
        count(*) AS span_count,
        count(*) FILTER (WHERE status_code = 'error') AS error_count
    FROM workflow_spans
    GROUP BY workflow_id
),
declared_starts AS (
    -- the declared workflows' first events (choreography.yaml's starts_with), from
    -- the model the correlator last wrote
    SELECT to_subject AS first_subject, min(workflow_type) AS declared_type
    FROM choreography_follows
    WHERE from_subject IS NULL AND source = 'declared'
    GROUP BY to_subject
)
SELECT
    w.workflow_id,
    coalesce(s.workflow_type, d.declared_type, w.first_subject) AS workflow_type,
    w.started_at,
    w.last_activity_at,
    CASE WHEN s.status = 'completed' THEN w.last_activity_at END AS ended_at,
    (epoch_us(w.last_activity_at) - epoch_us(w.started_at)) / 1000.0 AS duration_ms,
    coalesce(s.status, 'in_flight') AS status,
    s.waiting_on,
    s.root_cause,
    w.services,
    w.span_count,
    w.error_count,
    w.trace_ids
FROM w
LEFT JOIN declared_starts AS d USING (first_subject)
LEFT JOIN workflow_status AS s USING (workflow_id);
