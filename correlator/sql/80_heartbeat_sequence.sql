-- Every heartbeat with whether its instance restarted since the one before:
-- counters_fell when a counter is lower than at the instance's previous beat and
-- stays lower at its next one (a process restarted under the same
-- service.instance.id counts from zero again). Two processes sharing an instance id
-- interleave their beats: each one's counters fall, and rise back at the next beat,
-- which is no restart. The Services page says when; detection takes a message the
-- instance was handling before a restart as lost with the process.
CREATE OR REPLACE VIEW heartbeat_sequence AS
SELECT
    *,
    coalesce(
        (received < lag(received) OVER previous
            AND coalesce(lead(received) OVER previous < lag(received) OVER previous, true))
        OR (processed < lag(processed) OVER previous
            AND coalesce(lead(processed) OVER previous < lag(processed) OVER previous, true))
        OR (spans_exported < lag(spans_exported) OVER previous
            AND coalesce(
                lead(spans_exported) OVER previous < lag(spans_exported) OVER previous, true
            )),
        false
    ) AS counters_fell
FROM heartbeats
WINDOW previous AS (PARTITION BY service, instance ORDER BY "at");
