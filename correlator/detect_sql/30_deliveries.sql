-- Every delivery the choreography expects: each message × each consumer expected
-- for its subject (model_steps), plus every consumer actually seen handling it;
-- kept only when it is not settled, that is not processed exactly once (a delivery
-- processed once has nothing to report, and that is nearly all of them). The few
-- unsettled ones are found first: consumers seen without exactly one success, and
-- expected deliveries never seen at all (an anti join); only those few are joined
-- to their message and workflow (joining every message first cost most of this
-- statement).
-- state, in order of precedence:
--   done           processed successfully at least once
--   dead_lettered  terminated, past max deliveries, or republished to dlq.*
--   received       a receive span newer than the last finished attempt: the handler
--                  started and has not finished
--   failed         every finished attempt raised, or gave the message back (a nak from
--                  a handler that returned: it waits for the redelivery as after an error)
--   overran        its only finished attempts ran past the step's deadline before
--                  they ended in error (cancelled, killed, timed out): the handler
--                  hung (DESIGN.md: no process span ended within the deadline), it
--                  did not fail
--   unreceived     no sign the consumer ever got it
-- since: when the wait began (the publish, not before its cause's, else the
-- consumer's first sign of the message, else the first sign of it at all).
CREATE OR REPLACE TEMP TABLE d_deliveries AS
WITH handled_only AS (
    -- messages consumers handled whose publish span never arrived (few; the messages
    -- view's full outer join, without the per-message consumer lists it also builds).
    -- Their ids are looked up among the published first, so that the hash table is
    -- built on the few, not on every message.
    -- first_seen_at: the first sign of it (a consumer's span), where its wait begins
    SELECT message_id, any_value(workflow_id) AS workflow_id, any_value(trace_id) AS trace_id,
           any_value(subject) AS subject, NULL AS producer_service, NULL AS published_at,
           min(start_time) AS first_seen_at, false AS producer_seen
    FROM (SELECT * FROM delivery_spans WHERE NOT producer_seen)
    ANTI JOIN (
        SELECT message_id FROM published_messages
        SEMI JOIN (SELECT message_id FROM delivery_spans WHERE NOT producer_seen)
            USING (message_id)
    ) USING (message_id)
    GROUP BY message_id
),
published_or_handled AS (
    -- every message (copied once for its two uses: reading it twice instead saved
    -- ~15 ms of a 1M-span pass but cost more to plan in every tick)
    SELECT message_id, workflow_id, trace_id, subject, producer_service, published_at,
           published_at AS first_seen_at, true AS producer_seen
    FROM published_messages
    UNION ALL BY NAME
    SELECT * FROM handled_only
),
failures AS (
    -- attempts that raised (few): those that ran past the step's deadline before they
    -- ended in error overran it (the handler hung), the others failed
    SELECT
        d.message_id,
        d.consumer,
        count(*) FILTER (WHERE NOT d.overran) AS errors,
        count(*) FILTER (WHERE d.overran) AS overruns,
        max(d.start_time) FILTER (WHERE d.overran) AS last_overrun_start,
        arg_max(d.status_message, d.end_time) AS last_error
    FROM (
        SELECT
            d.*,
            d.duration_ms > 1000 * coalesce(st.deadline_s, $min_deadline_s) AS overran
        FROM delivery_spans AS d
        LEFT JOIN model_steps AS st ON st.subject = d.subject AND st.consumer = d.consumer
        WHERE d.operation = 'process' AND d.status_code = 'error'
    ) AS d
    GROUP BY d.message_id, d.consumer
),
unsettled_seen AS (
    -- consumers seen with a message, not processed exactly once (few)
    SELECT
        s.message_id,
        s.consumer,
        s.service,
        st.consumer_service,
        s.first_received_at,
        s.last_received_at,
        s.receiving_instance,
        s.receives,
        s.attempts,
        s.successes,
        s.given_back,
        coalesce(f.errors, 0) AS errors,
        coalesce(f.overruns, 0) AS overruns,
        f.last_overrun_start,
        s.first_attempt_at,
        s.last_attempt_end,
        f.last_error,
        -- a nak since its last attempt began (after it, as an Agent naks for a handler
        -- that raised, or during it, as a TracedMsg handler naks before it returns):
        -- JetStream will deliver the message again, once the delay that nak asked
        -- (when it said) has passed
        coalesce(s.last_nak_at >= s.last_attempt_at, false) AS retry_asked,
        CASE WHEN s.last_nak_at >= s.last_attempt_at THEN s.retry_due_at END AS retry_due_at
    FROM deliveries_seen AS s
    LEFT JOIN failures AS f USING (message_id, consumer)
    LEFT JOIN model_steps AS st ON st.subject = s.subject AND st.consumer = s.consumer
    WHERE s.successes <> 1
),
refused AS (
    -- messages the bus did not take, from an attempt that failed for it: their
    -- publish span ended in error, inside a handler attempt that raised (few).
    -- The attempt's failure, and the redelivery that retries it, is what the run
    -- waits on, not a message no one could receive. (A publish that failed inside
    -- an attempt that carried on is still owed, and reported dropped.)
    SELECT p.message_id
    FROM delivery_spans AS d
    JOIN (
        SELECT message_id, parent_key, parent_span_id FROM publish_spans
        WHERE status_code = 'error'
    ) AS p ON d.span_key = p.parent_key AND d.span_id = p.parent_span_id
    WHERE d.operation = 'process' AND d.status_code = 'error'
        -- published more than once under its id (retried_messages): one may have
        -- got through
        AND p.message_id NOT IN (SELECT message_id FROM retried_messages)
),
never_seen AS (
    -- expected deliveries no consumer span mentions (few: dropped, or not yet due)
    SELECT e.message_id, e.consumer, e.consumer_service
    FROM (
        SELECT m.message_id, st.consumer, st.consumer_service
        FROM published_or_handled AS m
        JOIN model_steps AS st
            ON st.subject = m.subject
            -- a consumer deployed later is owed only what was published since
            AND (st.expected_since IS NULL OR m.first_seen_at IS NULL
                OR m.first_seen_at >= st.expected_since)
    ) AS e
    ANTI JOIN deliveries_seen AS s USING (message_id, consumer)
    ANTI JOIN refused USING (message_id)
),
pending AS (
    SELECT * FROM unsettled_seen
    UNION ALL BY NAME
    SELECT * FROM never_seen
),
causes AS (
    -- when the message whose process span each pending message's publish was made in
    -- (its cause) was published. A publish is never earlier than its cause's: a
    -- producer host whose clock runs behind stamps it earlier, and its consumers,
    -- judged from that stamp, were past their deadline before they could have got it
    -- (40 s behind made every message it published dropped at once). The few pending
    -- publishes on the side a join builds its hash table from
    SELECT c.message_id, max(m.published_at) AS cause_published_at
    FROM published_messages AS m
    JOIN (
        SELECT p.message_id, d.message_id AS cause_message_id
        FROM delivery_spans AS d
        JOIN (
            SELECT message_id, parent_key, parent_span_id FROM publish_spans
            WHERE message_id IN (SELECT message_id FROM pending)
        ) AS p ON d.span_key = p.parent_key AND d.span_id = p.parent_span_id
        WHERE d.operation = 'process'
    ) AS c ON m.message_id = c.cause_message_id
    GROUP BY c.message_id
),
letters AS (
    SELECT * FROM dead_letters
),
replays AS (
    -- dead-lettered messages published again to their own subject, their id kept (an
    -- operator replaying the dead letter from dlq.<subject>): the latest such publish
    -- (few). The message is back in its consumers' queues: the dead letter before it
    -- is over, and a consumer that has not received it since owes it from then on
    -- (read as still dead-lettered, a replay never delivered was never told)
    SELECT
        message_id,
        max(published_at) AS replayed_at,
        arg_max(producer_service, published_at) AS replayed_by
    FROM publish_spans
    WHERE message_id IN (SELECT message_id FROM letters)
        AND NOT is_dead_letter_subject(subject)
    GROUP BY message_id
    HAVING count(*) > 1  -- more than its first publish
),
evidence AS (
    -- that a message was dead-lettered, per consumer it names (an advisory names the
    -- JetStream consumer, a term or dlq.* republish the consumer group), since it was
    -- last replayed
    SELECT
        message_id,
        consumer AS named,
        arg_min(source, "at") AS source,
        min("at") AS "at",
        arg_min(reason, "at") AS reason
    FROM letters
    LEFT JOIN replays AS r USING (message_id)
    WHERE r.replayed_at IS NULL OR letters."at" >= r.replayed_at
    GROUP BY message_id, consumer
),
candidates AS (
    -- the groups a dead-lettered message's evidence may name: those seen with it, and
    -- those still owed it (few: only dead-lettered messages)
    SELECT message_id, consumer FROM deliveries_seen
    WHERE message_id IN (SELECT message_id FROM evidence)
    UNION
    SELECT message_id, consumer FROM pending
    WHERE message_id IN (SELECT message_id FROM evidence)
),
claims AS (
    -- fan-out: one group's dead letter says nothing of the message's other groups,
    -- even once that group processed it. Evidence is about the group it names, or one
    -- of its durables (01_nats_names.sql), or, naming none, about every one
    SELECT e.*, c.consumer
    FROM evidence AS e
    JOIN candidates AS c USING (message_id)
    WHERE e.named IS NULL OR named_after_group(e.named, c.consumer)
),
unclaimed AS (
    -- evidence that names none of the message's groups (a consumer not named after its
    -- group): about each group still owed it, as nothing tells which
    SELECT e.*, p.consumer
    FROM (SELECT * FROM evidence WHERE named IS NOT NULL) AS e
    ANTI JOIN claims AS c USING (message_id, named)
    JOIN pending AS p USING (message_id)
),
dead AS (
    SELECT
        message_id,
        consumer,
        arg_min(source, "at") AS source,
        min("at") AS "at",
        arg_min(reason, "at") AS reason
    FROM (SELECT * FROM claims UNION ALL SELECT * FROM unclaimed)
    GROUP BY message_id, consumer
)
SELECT
    s.message_id,
    s.consumer,
    coalesce(s.service, s.consumer_service) AS consumer_service,
    m.workflow_id,
    w.workflow_type,
    m.trace_id,
    m.subject,
    m.producer_service,
    m.published_at,
    m.producer_seen,
    s.first_received_at,
    s.last_received_at,
    -- when the handler's wait began: its latest receive, but never before the publish
    -- it received (a consumer host whose clock runs behind stamps its receive earlier:
    -- judged from that stamp, a handler a second into its work was already hung)
    greatest(s.last_received_at, m.published_at) AS received_from,
    s.receiving_instance,
    -- deliveries received, and attempts that finished (a process span ended): a
    -- dead letter of a handler that hung at every delivery has none
    coalesce(s.receives, 0) AS receives,
    coalesce(s.attempts, 0) AS attempts,
    coalesce(s.successes, 0) AS successes,
    coalesce(s.errors, 0) AS errors,
    coalesce(s.given_back, 0) AS given_back,
    coalesce(s.overruns, 0) AS overruns,
    s.last_overrun_start,
    s.last_attempt_end,
    s.last_error,
    coalesce(s.retry_asked, false) AS retry_asked,
    s.retry_due_at,
    dead.source AS dead_letter_source,
    dead.at AS dead_lettered_at,
    dead.reason AS dead_letter_reason,
    replay.replayed_at,
    replay.replayed_by,
    coalesce(st.deadline_s, $min_deadline_s) AS deadline_s,
    -- a consumer still owed a message whose publish never arrived waits from when
    -- another consumer's span first showed the message; a published one, from its
    -- publish, but not before its cause's (causes)
    -- (a consumer that has not received a replayed dead letter since, from the replay)
    CASE WHEN replay.unseen THEN replay.replayed_at ELSE coalesce(
        greatest(m.published_at, cause.cause_published_at),
        s.first_received_at, s.first_attempt_at, m.first_seen_at
    ) END AS since,
    CASE
        WHEN coalesce(s.successes, 0) > 0 THEN 'done'
        WHEN dead.message_id IS NOT NULL THEN 'dead_lettered'
        WHEN replay.unseen THEN 'unreceived'
        WHEN s.last_received_at IS NOT NULL
            AND (s.last_attempt_end IS NULL OR s.last_received_at > s.last_attempt_end)
            THEN 'received'
        WHEN coalesce(s.errors, 0) > 0 OR coalesce(s.given_back, 0) > 0 THEN 'failed'
        WHEN coalesce(s.overruns, 0) > 0 THEN 'overran'
        ELSE 'unreceived'
    END AS state
FROM published_or_handled AS m  -- the few pending deliveries on the right: a join
JOIN pending AS s USING (message_id)  -- builds its hash table on that side
LEFT JOIN d_workflows AS w USING (workflow_id)
LEFT JOIN dead ON dead.message_id = s.message_id AND dead.consumer = s.consumer
LEFT JOIN causes AS cause ON cause.message_id = s.message_id
LEFT JOIN (
    SELECT
        r.*,
        p.consumer,
        r.replayed_at > coalesce(greatest(p.last_received_at, p.last_attempt_end), '-infinity')
            AS unseen
    FROM replays AS r
    JOIN pending AS p USING (message_id)
) AS replay ON replay.message_id = s.message_id AND replay.consumer = s.consumer
LEFT JOIN model_steps AS st ON st.subject = m.subject AND st.consumer = s.consumer;
