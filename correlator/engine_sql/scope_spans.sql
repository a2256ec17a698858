-- The spans a tick re-judges (tick_scope.py): of the traces new spans touch or
-- open_traces names, the whole workflows of those, and (when some held spans link
-- across traces: the walk tick_scope.py adds) every trace span links join them to.
-- A settled workflow (stalled or failed, its anomalies told) is named once its
-- due_at has come, once something it watched fell silent, or on its turn.
CREATE OR REPLACE TEMP TABLE scope_spans AS
WITH {recursive}
heard AS (
    -- the instances that heartbeat, silent by $now (detect_sql/10_instances.sql: the
    -- heartbeats the last pass read)
    SELECT service, instance, epoch_us(CAST($now AS TIMESTAMPTZ))
        - epoch_us(last_heard) > $silence_factor * interval_s * 1e6 AS silent
    FROM d_instances
),
silenced AS (
    -- as open_traces.watched names them: an instance, a service (15_services.sql)
    SELECT service || ' ' || instance AS name FROM heard WHERE silent
    UNION ALL
    SELECT service FROM heard GROUP BY service HAVING bool_and(silent)
),
touched AS (
    SELECT DISTINCT trace_id FROM new_spans
    UNION SELECT trace_id FROM open_traces
        WHERE NOT settled OR due_at <= CAST($now AS TIMESTAMPTZ)
            OR hash(workflow_id) % $every = $turn % $every
            OR list_has_any(watched, (SELECT list(name) FROM silenced))
    UNION SELECT unnest(CAST($reloaded AS VARCHAR[]))
),
kin AS (
    -- the whole workflows of those traces (a new span may carry no workflow id, as a
    -- handler's own span; an open trace may be named alone, as a consumer's whose
    -- producer span has not arrived)
    SELECT trace_id FROM touched
    UNION
    SELECT trace_id FROM held_traces WHERE workflow_id IN (
        SELECT workflow_id FROM held_traces
        WHERE trace_id IN (SELECT trace_id FROM touched)
    )
){walk}
SELECT * FROM work_spans WHERE trace_id IN (SELECT trace_id FROM {scope})
