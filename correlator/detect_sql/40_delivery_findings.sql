-- Findings about deliveries (DESIGN.md, "What the correlator detects"):
--   dead_lettered  at once, whatever the deadline;
--   failed         every attempt raised and no retry came within retry_grace_s; when
--                  the last attempt was nak'ed (a redelivery is scheduled, after a
--                  backoff of the consumer's choosing), within the step's deadline, or
--                  the delay that nak asked when it is longer (a backoff past the
--                  deadline is a retry scheduled late, not a failure), and
--                  retry_grace_s more;
--   hung           received, and no attempt finished within the step's deadline
--                  (overran: attempts that ended in error only past it count too),
--                  while the receiving instance is known alive: a heartbeat of it
--                  since the deadline passed. Until then (an instance killed while
--                  handling stops beating before it is called down) the delivery is
--                  not judged, so a crash is reported once, as stalled, not first
--                  as hung. Instances that never heartbeat are judged at once;
--   dropped        an expected consumer never received it within the step's deadline;
--   stalled        as hung or dropped, but the consumer is down (its heartbeats
--                  stopped; for a message never received, before the deadline
--                  passed), or the instance holding the message restarted since
--                  (its counters began again): the workflow waits on a service, not on
--                  a lost message or a running handler;
--                  also while a consumer back from an outage that the message waited
--                  through works off its backlog (one step deadline from its return).
--                  detection.py adds the backlog JetStream holds for the group. Root
--                  cause backlog: never received, while the consumer is up and
--                  JetStream holds a backlog for its group (sampled since the
--                  publish): queued behind a busy consumer, not lost;
--   duplicate      processed successfully more than once by one consumer group.
--   telemetry_gap  as hung (received, not overran: that hang was seen) or dropped, but
--                  the consumer's exporter reported dropping spans since the wait
--                  began: its spans are missing, so the finding says so instead of
--                  blaming the workflow.
-- waited_s counts from the publish (unreceived), the latest receive, not before the
-- publish (received), or the last attempt (failed).
CREATE OR REPLACE TEMP TABLE d_delivery_findings AS
WITH lag_samples AS (
    -- the collector's samples of each JetStream consumer (every 10 s), once per filter
    -- subject
    SELECT consumer AS durable, num_pending, "at", filter
    FROM (
        SELECT
            *,
            unnest(CASE WHEN coalesce(filter_subject, '') = '' THEN [NULL]
                ELSE string_split(filter_subject, ',') END) AS filter
        FROM consumer_lag
        WHERE "at" <= CAST($now AS TIMESTAMPTZ)
    )
),
waiting_behind AS (
    -- per delivery no consumer received (few) and JetStream consumer of its group:
    -- the samples taken since its publish. A group's JetStream consumer is named
    -- after it (the group's name, or an Agent's durable for one of its filters), and
    -- a filter covers the subject (01_nats_names.sql)
    SELECT
        d.message_id,
        d.consumer,
        l.durable,
        min(l.num_pending) AS least_pending,
        arg_max(l.num_pending, l."at") AS pending,
        max(l."at") AS sampled_at
    FROM lag_samples AS l
    JOIN (SELECT * FROM d_deliveries WHERE state = 'unreceived') AS d
        ON l."at" >= d.since
        AND (l.durable = d.consumer OR l.durable = agent_durable_name(d.consumer, l.filter))
        AND (l.filter IS NULL OR nats_subject_matches(l.filter, d.subject))
    GROUP BY d.message_id, d.consumer, l.durable
),
queued AS (
    -- queued behind a busy consumer, not lost: every sample since the publish held a
    -- backlog for the group (one that emptied since would have delivered it), and one
    -- is from the last minute
    SELECT
        message_id,
        consumer,
        sum(pending) AS consumer_backlog,
        max(sampled_at) AS backlog_sampled_at
    FROM waiting_behind
    WHERE least_pending > 0
        AND sampled_at >= CAST($now AS TIMESTAMPTZ) - INTERVAL 60 SECOND
    GROUP BY message_id, consumer
),
d AS (
    SELECT
        d.*,
        q.consumer_backlog,
        q.backlog_sampled_at,
        -- the instance holding it is silent, or restarted since it received it
        coalesce(i.silent, s.silent, false)
            OR coalesce(i.restarted_at > d.last_received_at, false) AS receiver_down,
        CASE WHEN i.restarted_at > d.last_received_at THEN i.restarted_at END
            AS receiver_restarted_at,
        -- the consumer's service is down, and was when the wait's deadline passed (no
        -- heartbeat since before it): heard after it, the service did not take the
        -- message while it ran, and a later outage does not explain that (dropped).
        -- Heard: when the collector stored its beats (10_instances.sql)
        coalesce(
            s.silent AND epoch_us(s.last_heard) < epoch_us(d.since) + d.deadline_s * 1e6, false
        ) AS service_down,
        s.last_heard AS service_last_heard,
        -- what it waits on said it was stopping (its last beat): stopped on purpose
        coalesce(CASE WHEN d.state = 'received' THEN i.stopped END, s.stopped, false)
            AS consumer_stopped,
        coalesce(
            s.recovered_at > d.since
                AND epoch_us(CAST($now AS TIMESTAMPTZ)) - epoch_us(s.recovered_at)
                    <= d.deadline_s * 1e6,
            false
        ) AS catching_up,
        CASE WHEN s.recovered_at > d.since THEN s.recovered_at END AS consumer_back_at,
        i.last_heard AS instance_last_heard,
        -- a heartbeat of the receiving instance since the handler's deadline passed
        -- (true when the instance never heartbeats: nothing to wait for); its own
        -- clock's, as its receive span's
        coalesce(
            epoch_us(i.last_seen) >= epoch_us(d.last_received_at) + d.deadline_s * 1e6, true
        ) AS receiver_seen_after_deadline,
        (epoch_us(CAST($now AS TIMESTAMPTZ)) - epoch_us(
            CASE d.state
                WHEN 'received' THEN d.received_from
                WHEN 'overran' THEN coalesce(d.last_received_at, d.last_overrun_start)
                WHEN 'failed' THEN d.last_attempt_end
                WHEN 'dead_lettered' THEN d.dead_lettered_at
                ELSE d.since
            END
        )) / 1e6 AS waited_s,
        -- from the last attempt to the redelivery its nak asked for (null: unknown)
        (epoch_us(d.retry_due_at) - epoch_us(d.last_attempt_end)) / 1e6 AS retry_delay_s
    FROM d_deliveries AS d
    LEFT JOIN d_services AS s ON s.service = d.consumer_service
    -- instance ids are unique per service only (OpenTelemetry): a host name is common
    LEFT JOIN d_instances AS i
        ON i.service = d.consumer_service AND i.instance = d.receiving_instance
    LEFT JOIN queued AS q ON q.message_id = d.message_id AND q.consumer = d.consumer
),
first_judgement AS (
    SELECT
        *,
        CASE
            WHEN state = 'dead_lettered' THEN 'dead_lettered'
            WHEN state = 'failed' AND waited_s >= $retry_grace_s
                AND (NOT retry_asked
                    OR waited_s >= greatest(deadline_s, retry_delay_s) + $retry_grace_s)
                THEN 'failed'
            WHEN state = 'received' AND waited_s > deadline_s AND receiver_down THEN 'stalled'
            WHEN state = 'received' AND waited_s > deadline_s AND receiver_seen_after_deadline
                THEN 'hung'
            WHEN state = 'overran' THEN 'hung'
            WHEN state = 'unreceived' AND waited_s > deadline_s
                AND (service_down OR catching_up OR consumer_backlog IS NOT NULL)
                THEN 'stalled'
            WHEN state = 'unreceived' AND waited_s > deadline_s THEN 'dropped'
        END AS kind,
        CASE state
            WHEN 'received' THEN last_received_at
            WHEN 'overran' THEN coalesce(last_received_at, last_overrun_start)
            ELSE since
        END AS wait_from
    FROM d
),
waits AS (
    -- the waits a lost span could explain (hung, dropped, or queued behind a backlog).
    -- Not a handler seen running past its deadline (overran): its process span arrived
    -- and shows the hang, so spans its service dropped meanwhile were other ones
    SELECT *
    FROM first_judgement
    WHERE (kind = 'hung' AND state <> 'overran') OR kind = 'dropped'
        OR (kind = 'stalled' AND consumer_backlog IS NOT NULL AND state = 'unreceived'
            AND NOT (service_down OR catching_up))
),
lost_spans AS (
    -- per instance of the consumer: spans dropped now, and before the wait began
    SELECT j.message_id, j.consumer, h.instance,
           max(h.spans_dropped) AS dropped_now,
           coalesce(max(h.spans_dropped) FILTER (WHERE h."at" < j.wait_from), 0) AS dropped_before
    FROM heartbeats AS h  -- the few judgements on the right: a join builds that side
    JOIN waits AS j ON j.consumer_service = h.service
    WHERE h."at" <= CAST($now AS TIMESTAMPTZ)
    GROUP BY j.message_id, j.consumer, h.instance
),
gaps AS (
    SELECT message_id, consumer, sum(dropped_now - dropped_before) AS spans_dropped
    FROM lost_spans
    GROUP BY message_id, consumer
    HAVING sum(dropped_now - dropped_before) > 0
),
judged AS (
    SELECT
        j.* EXCLUDE (kind),
        CASE WHEN g.message_id IS NOT NULL THEN 'telemetry_gap' ELSE j.kind END AS kind,
        g.spans_dropped
    FROM first_judgement AS j
    LEFT JOIN gaps AS g USING (message_id, consumer)
)
SELECT
    kind,
    CASE
        WHEN kind = 'stalled' AND state = 'unreceived' AND NOT (service_down OR catching_up)
            THEN 'backlog'
        WHEN kind = 'stalled' THEN 'consumer_down'
        WHEN kind = 'telemetry_gap' THEN 'spans_dropped'
        ELSE kind
    END AS root_cause,
    workflow_id, workflow_type, trace_id, consumer_service AS service, subject, message_id,
    subject AS step, consumer, since, waited_s, deadline_s, state,
    producer_service, published_at, producer_seen, first_received_at, last_received_at,
    receiving_instance, receives, attempts,
    errors, given_back, last_error, last_attempt_end, last_overrun_start, dead_letter_source, dead_letter_reason,
    coalesce(instance_last_heard, service_last_heard) AS consumer_last_seen, consumer_stopped,
    successes, spans_dropped, CASE WHEN catching_up THEN consumer_back_at END AS consumer_back_at,
    consumer_backlog, backlog_sampled_at, receiver_restarted_at, replayed_at, replayed_by
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
