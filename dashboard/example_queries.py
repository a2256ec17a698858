"""Example queries the SQL console offers, over the SQL contract's views."""

from __future__ import annotations

EXAMPLE_QUERIES: dict[str, str] = {
    "Stalled workflows and what they wait on": """\
SELECT workflow_id, workflow_type, waiting_on, last_activity_at
FROM workflows
WHERE status = 'stalled'
ORDER BY last_activity_at""",
    "Anomalies by kind": """\
SELECT kind, count(*) AS anomalies, max(detected_at) AS latest
FROM anomalies
GROUP BY kind
ORDER BY anomalies DESC""",
    "Slowest hops (p95)": """\
SELECT producer_service, subject, consumer_service, messages, p95_ms, drop_rate
FROM edges
ORDER BY p95_ms DESC NULLS LAST
LIMIT 20""",
    "Messages nobody consumed": """\
-- of subjects the choreography expects a consumer for (not a run's last event)
SELECT message_id, workflow_id, subject, producer_service, published_at
FROM messages
WHERE outcome = 'unconsumed'
  AND subject IN (SELECT subject FROM choreography_steps)
ORDER BY published_at DESC
LIMIT 100""",
    "Spans of the last 5 minutes by service": """\
SELECT service_name, count(*) AS spans, count(*) FILTER (WHERE status_code = 'error') AS errors
FROM spans
WHERE start_time >= now() - INTERVAL 5 MINUTE
GROUP BY service_name
ORDER BY spans DESC""",
    "Services that dropped telemetry": """\
SELECT service, instance, max(spans_dropped) AS spans_dropped, max("at") AS last_heartbeat
FROM heartbeats
GROUP BY service, instance
HAVING max(spans_dropped) > 0""",
    "JetStream consumers falling behind (last hour)": """\
SELECT stream, consumer, arg_max(num_pending, "at") AS backlog_now,
       max(num_pending) AS backlog_peak, max("at") AS last_sample
FROM consumer_lag
WHERE "at" >= now() - INTERVAL 1 HOUR
GROUP BY stream, consumer
ORDER BY backlog_now DESC""",
}
