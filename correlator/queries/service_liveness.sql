-- Liveness from heartbeats: each instance's latest counters, and whether it beat
-- within three of its own intervals (or 30 s when it did not say its interval).
-- restarted_at: the last beat at which a counter fell below the instance's previous
-- one (heartbeat_sequence), so counters lower than a minute ago read as a restart.
-- stopped: its last beat said it was stopping (on purpose: not silent by accident).
-- last_seen and alive go by when the collector stored the beats (received_at; `at`
-- in stores from before it): `at` is the instance's own clock, which may run behind.
SELECT
    service,
    instance,
    max(coalesce(received_at, "at")) AS last_seen,
    max(coalesce(received_at, "at"))
        >= now() - to_seconds(3 * coalesce(arg_max(interval_s, "at"), 10.0)) AS alive,
    max(coalesce(received_at, "at")) FILTER (WHERE counters_fell) AS restarted_at,
    coalesce(arg_max(stopped, "at"), false) AS stopped,
    arg_max(received, "at") AS received,
    arg_max(processed, "at") AS processed,
    arg_max(failed, "at") AS failed,
    arg_max(dead_lettered, "at") AS dead_lettered,
    arg_max(in_flight, "at") AS in_flight,
    arg_max(spans_exported, "at") AS spans_exported,
    arg_max(spans_dropped, "at") AS spans_dropped
FROM heartbeat_sequence
GROUP BY service, instance
ORDER BY alive, service, instance;
