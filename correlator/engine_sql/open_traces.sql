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
-- deadline) keeps it due at every tick. Null: none (what it waits on is told).
-- Of the workflows judged in this pass (d_workflow_status); a cold pass creates the
-- table from them, a tick replaces the rows of those it judged.
WITH due AS (
    SELECT
        d.workflow_id,
        min(CASE d.state
            WHEN 'unreceived' THEN d.since + to_microseconds(CAST(d.deadline_s * 1e6 AS BIGINT))
            WHEN 'received'
                THEN d.last_received_at + to_microseconds(CAST(d.deadline_s * 1e6 AS BIGINT))
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
)
SELECT s.trace_id, s.workflow_id, w.status IN ('stalled', 'failed') AS settled,
       w.last_activity_at + $keep AS open_until, due.due_at
FROM workflow_spans AS s
JOIN d_workflow_status AS w USING (workflow_id)
LEFT JOIN due USING (workflow_id)
WHERE w.status <> 'completed' AND w.last_activity_at + $keep > CAST($now AS TIMESTAMPTZ)
UNION
SELECT trace_id, workflow_id, false, greatest(start_time, received_at) + $orphan_keep,
       CAST(NULL AS TIMESTAMPTZ)
FROM delivery_spans
WHERE NOT producer_seen AND ref_key IS NOT NULL
    AND greatest(start_time, received_at) + $orphan_keep > CAST($now AS TIMESTAMPTZ)
