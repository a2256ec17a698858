-- Liveness from heartbeats: each instance's latest counters, and whether it beat
-- within three of its own intervals (or 30 s when it did not say its interval).
SELECT
    service,
    instance,
    max("at") AS last_seen,
    max("at") >= now() - to_seconds(3 * coalesce(arg_max(interval_s, "at"), 10.0)) AS alive,
    arg_max(received, "at") AS received,
    arg_max(processed, "at") AS processed,
    arg_max(failed, "at") AS failed,
    arg_max(dead_lettered, "at") AS dead_lettered,
    arg_max(in_flight, "at") AS in_flight,
    arg_max(spans_exported, "at") AS spans_exported,
    arg_max(spans_dropped, "at") AS spans_dropped
FROM heartbeats
GROUP BY service, instance
ORDER BY alive, service, instance;
