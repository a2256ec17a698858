-- Traces of workflows that may still change, which ticks re-judge without new spans
-- (as time passes, a wait runs past its deadline): those not completed and active
-- within $keep of $now (a workflow stuck for longer keeps its last verdict), and
-- those with a consumer span whose producer span has not arrived, until its orphan
-- grace has passed twice over ($orphan_keep: a workflow can complete within the
-- grace, and the orphan is found only by a pass after it).
-- settled: the workflow is stalled or failed already, its anomalies told; a tick
-- re-judges it at due_at (span_memory.scope), and now and then. open_until: when it
-- leaves.
-- due_at: when the workflow may next change by time alone, the earliest instant
-- that one of its waits no finding reports yet runs past what detection allows: a
-- step's deadline (since the publish, or the latest receive), or a failed attempt's
-- retry grace (after the redelivery its nak asked for, when it asked). A wait past
-- it and not judged yet (a hang is told once its instance heartbeats after the
-- deadline) keeps it due at every tick. A wait a finding reports changes by time
-- alone too, and nothing arrives to say so: its consumer back from an outage stops
-- catching up one deadline after its return (consumer_down, then dropped), its
-- newest backlog sample grows over a minute old (backlog, then dropped): due then as
-- well. Null: none (what it waits on is told).
-- watched: what falling silent would change a reported wait of it (dropped or hung,
-- then consumer_down): the consumer's service (when no instance of it is heard), or
-- the instance holding the message (service and instance, a space between). A tick
-- re-judges the workflow once one of them is silent (span_memory.scope): the instant
-- moves on with every heartbeat, so a due_at of it would come again and again.
-- Of the workflows judged in this pass (d_workflow_status); a cold pass creates the
-- table from them, a tick replaces the rows of those it judged.
WITH waits AS (
    SELECT
        d.workflow_id,
        min(CASE d.state
            WHEN 'unreceived' THEN d.since + to_microseconds(CAST(d.deadline_s * 1e6 AS BIGINT))
            WHEN 'received'
                THEN d.received_from + to_microseconds(CAST(d.deadline_s * 1e6 AS BIGINT))
            WHEN 'failed' THEN CASE WHEN d.retry_asked
                THEN greatest(
                    d.last_attempt_end + to_microseconds(CAST(d.deadline_s * 1e6 AS BIGINT)),
                    coalesce(d.retry_due_at, d.last_attempt_end)
                )
                ELSE d.last_attempt_end
            END + to_microseconds(CAST($retry_grace_s * 1e6 AS BIGINT))
        END) AS due_at
    FROM d_deliveries AS d
    ANTI JOIN d_delivery_findings AS f USING (message_id, consumer)
    WHERE d.state IN ('unreceived', 'received', 'failed')
    GROUP BY d.workflow_id
    UNION ALL
    -- 40_delivery_findings.sql: catching_up, queued
    SELECT
        workflow_id,
        min(least(
            consumer_back_at + to_microseconds(CAST(deadline_s * 1e6 AS BIGINT)),
            backlog_sampled_at + INTERVAL 60 SECOND
        )) AS due_at
    FROM d_delivery_findings
    WHERE state IN ('unreceived', 'received')
    GROUP BY workflow_id
),
due AS (
    SELECT workflow_id, min(due_at) AS due_at FROM waits GROUP BY workflow_id
),
watched AS (
    -- 40_delivery_findings.sql: receiver_down (the instance, else its service) for a
    -- received message, service_down for one never received; only while it is heard
    -- (services that never heartbeat are never called down)
    SELECT
        f.workflow_id,
        list(DISTINCT CASE WHEN f.state = 'received' AND i.instance IS NOT NULL
            THEN f.service || ' ' || i.instance ELSE f.service END) AS watched
    FROM d_delivery_findings AS f
    LEFT JOIN d_instances AS i ON i.service = f.service AND i.instance = f.receiving_instance
    LEFT JOIN d_services AS s ON s.service = f.service
    WHERE f.state IN ('unreceived', 'received')
        AND NOT coalesce(CASE WHEN f.state = 'received' THEN i.silent END, s.silent, true)
    GROUP BY f.workflow_id
)
SELECT s.trace_id, s.workflow_id, w.status IN ('stalled', 'failed') AS settled,
       w.last_activity_at + $keep AS open_until, due.due_at, watched.watched
FROM workflow_spans AS s
JOIN d_workflow_status AS w USING (workflow_id)
LEFT JOIN due USING (workflow_id)
LEFT JOIN watched USING (workflow_id)
WHERE w.status <> 'completed' AND w.last_activity_at + $keep > CAST($now AS TIMESTAMPTZ)
UNION
SELECT trace_id, workflow_id, false, greatest(start_time, received_at) + $orphan_keep,
       CAST(NULL AS TIMESTAMPTZ), CAST(NULL AS VARCHAR[])
FROM delivery_spans
WHERE NOT producer_seen AND ref_key IS NOT NULL
    AND greatest(start_time, received_at) + $orphan_keep > CAST($now AS TIMESTAMPTZ)
