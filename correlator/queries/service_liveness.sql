-- Liveness from heartbeats: each instance's latest counters, and whether it beat
-- within three of its own intervals (or 30 s when it did not say its interval).
-- restarted_at: the last beat at which a counter fell below the instance's previous
-- beat (a process that restarted under the same service.instance.id counts from
-- zero again), so counters lower than a minute ago read as a restart, not a loss.
WITH beats AS (
    SELECT
        *,
        coalesce(
            received < lag(received) OVER previous
                OR processed < lag(processed) OVER previous
                OR spans_exported < lag(spans_exported) OVER previous,
            false
        ) AS counters_fell
    FROM heartbeats
    WINDOW previous AS (PARTITION BY service, instance ORDER BY "at")
)
SELECT
    service,
    instance,
    max("at") AS last_seen,
    max("at") >= now() - to_seconds(3 * coalesce(arg_max(interval_s, "at"), 10.0)) AS alive,
    max("at") FILTER (WHERE counters_fell) AS restarted_at,
    arg_max(received, "at") AS received,
    arg_max(processed, "at") AS processed,
    arg_max(failed, "at") AS failed,
    arg_max(dead_lettered, "at") AS dead_lettered,
    arg_max(in_flight, "at") AS in_flight,
    arg_max(spans_exported, "at") AS spans_exported,
    arg_max(spans_dropped, "at") AS spans_dropped
FROM beats
GROUP BY service, instance
ORDER BY alive, service, instance;
