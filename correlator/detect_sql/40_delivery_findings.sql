-- Findings about deliveries (DESIGN.md, "What the correlator detects"):
--   dead_lettered  at once, whatever the deadline;
--   failed         every attempt raised and no retry came within retry_grace_s;
--   hung           received, and no attempt finished within the step's deadline;
--   dropped        an expected consumer never received it within the step's deadline;
--   stalled        as hung or dropped, but the consumer is down (its heartbeats
--                  stopped): the workflow waits on a service, not on a lost message;
--   duplicate      processed successfully more than once by one consumer group.
-- waited_s counts from the publish (unreceived), the latest receive (received) or
-- the last attempt (failed).
CREATE OR REPLACE TEMP TABLE d_delivery_findings AS
WITH d AS (
    SELECT
        d.*,
        coalesce(i.silent, s.silent, false) AS receiver_down,
        coalesce(s.silent, false) AS service_down,
        s.last_seen AS service_last_seen,
        i.last_seen AS instance_last_seen,
        (epoch_us(CAST($now AS TIMESTAMPTZ)) - epoch_us(
            CASE d.state
                WHEN 'received' THEN d.last_received_at
                WHEN 'failed' THEN d.last_attempt_end
                WHEN 'dead_lettered' THEN d.dead_lettered_at
                ELSE d.since
            END
        )) / 1e6 AS waited_s
    FROM d_deliveries AS d
    LEFT JOIN d_services AS s ON s.service = d.consumer_service
    LEFT JOIN d_instances AS i ON i.instance = d.receiving_instance
),
judged AS (
    SELECT
        *,
        CASE
            WHEN state = 'dead_lettered' THEN 'dead_lettered'
            WHEN state = 'failed' AND waited_s >= $retry_grace_s THEN 'failed'
            WHEN state = 'received' AND waited_s > deadline_s AND receiver_down THEN 'stalled'
            WHEN state = 'received' AND waited_s > deadline_s THEN 'hung'
            WHEN state = 'unreceived' AND waited_s > deadline_s AND service_down THEN 'stalled'
            WHEN state = 'unreceived' AND waited_s > deadline_s THEN 'dropped'
        END AS kind
    FROM d
)
SELECT
    kind,
    CASE kind WHEN 'stalled' THEN 'consumer_down' ELSE kind END AS root_cause,
    workflow_id, workflow_type, trace_id, consumer_service AS service, subject, message_id,
    subject AS step, consumer, since, waited_s, deadline_s, state,
    producer_service, published_at, first_received_at, last_received_at, receiving_instance,
    errors, last_error, dead_letter_source, dead_letter_reason,
    coalesce(instance_last_seen, service_last_seen) AS consumer_last_seen,
    successes
FROM judged
WHERE kind IS NOT NULL
UNION ALL BY NAME
SELECT
    'duplicate' AS kind, 'duplicate' AS root_cause,
    workflow_id, workflow_type, trace_id, consumer_service AS service, subject, message_id,
    subject AS step, consumer, since, waited_s, deadline_s, state, producer_service,
    published_at, successes
FROM d
WHERE successes > 1;
