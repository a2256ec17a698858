-- slow: a step that completed, but past its declared SLA, or (without one) far past
-- its learned p95: slow_factor times it, and at least slow_min_excess_s more, once
-- the step has slow_min_samples samples. Only the first successful attempt counts
-- (deliveries_seen): a redelivered copy processed again later is a duplicate, not a
-- slow step.
CREATE OR REPLACE TEMP TABLE d_slow_findings AS
SELECT
    'slow' AS kind,
    'slow' AS root_cause,
    h.workflow_id,
    w.workflow_type,
    h.trace_id,
    h.service AS service,
    h.subject,
    h.message_id,
    h.subject AS step,
    h.consumer,
    h.published_at AS since,
    h.latency_ms,
    h.queue_wait_ms,
    h.processing_ms,
    s.p95_ms,
    s.sla_s
FROM deliveries_seen AS h
JOIN model_steps AS s ON s.subject = h.subject AND s.consumer = h.consumer
LEFT JOIN d_workflows AS w USING (workflow_id)
WHERE h.successes > 0
    AND CASE
        WHEN s.sla_s IS NOT NULL THEN h.latency_ms > s.sla_s * 1000
        ELSE s.samples >= $slow_min_samples
            AND h.latency_ms > $slow_factor * s.p95_ms
            AND h.latency_ms - s.p95_ms > $slow_min_excess_s * 1000
    END;
