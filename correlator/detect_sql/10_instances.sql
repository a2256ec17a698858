-- Liveness of every service instance that heartbeats, as of the pass's instant:
-- silent once it missed silence_factor of its own intervals (10 s when it did not
-- say), by when the collector stored its beats (last_heard: received_at, the
-- collector's clock; `at` in stores from before it). The beats' own `at` is the
-- instance's clock, which may run behind: judged on it, an instance beating every
-- second looked silent. last_seen (its own clock) is compared with its own spans.
-- spans_dropped is its exporter's running total. restarted_at: the last beat
-- at which a counter fell below the one before (a process restarted under the same
-- service.instance.id counts from zero again: heartbeat_sequence): what it was
-- handling died with it. stopped: its last beat said it was stopping (a deliberate
-- stop, not a crash; null in stores from before beats said so).
CREATE OR REPLACE TEMP TABLE d_instances AS
SELECT
    service,
    instance,
    max("at") AS last_seen,
    max(coalesce(received_at, "at")) AS last_heard,
    max("at") FILTER (WHERE counters_fell) AS restarted_at,
    coalesce(arg_max(interval_s, "at"), 10.0) AS interval_s,
    coalesce(arg_max(spans_dropped, "at"), 0) AS spans_dropped,
    coalesce(arg_max(stopped, "at"), false) AS stopped,
    epoch_us(CAST($now AS TIMESTAMPTZ)) - epoch_us(max(coalesce(received_at, "at")))
        > $silence_factor * coalesce(arg_max(interval_s, "at"), 10.0) * 1e6 AS silent
FROM heartbeat_sequence
WHERE coalesce(received_at, "at") <= CAST($now AS TIMESTAMPTZ)
GROUP BY service, instance;
