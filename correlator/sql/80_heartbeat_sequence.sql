-- Every heartbeat with whether its instance restarted since the one before:
-- counters_fell when a counter is lower than at the instance's previous beat (a
-- process restarted under the same service.instance.id counts from zero again).
-- The Services page says when; detection takes a message the instance was handling
-- before a restart as lost with the process.
CREATE OR REPLACE VIEW heartbeat_sequence AS
SELECT
    *,
    coalesce(
        received < lag(received) OVER previous
            OR processed < lag(processed) OVER previous
            OR spans_exported < lag(spans_exported) OVER previous,
        false
    ) AS counters_fell
FROM heartbeats
WINDOW previous AS (PARTITION BY service, instance ORDER BY "at");
