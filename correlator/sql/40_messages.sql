-- composed: created with the views it reads inlined, each computed once per query
-- (store/view_composition.py).
-- One row per message: who published it, who consumed it, how it ended.
-- Messages whose publish span never arrived still appear (producer_service null).
-- outcome: dead_lettered | processed (by at least one consumer) | failed (every
-- attempt raised, or its handler gave the message back with a nak or a term) |
-- received (never finished processing) | unconsumed.
-- Counted per consumer as detection counts them (deliveries_seen): an attempt its
-- handler settled with a nak or a term processed nothing, even when it did not raise.
CREATE OR REPLACE VIEW messages AS
WITH handled AS (
    SELECT
        message_id,
        any_value(workflow_id) AS workflow_id,
        any_value(trace_id) AS trace_id,
        -- a group that consumed the dead-letter subject is named with that subject
        coalesce(
            any_value(subject) FILTER (WHERE NOT is_dead_letter_subject(subject)),
            any_value(subject)
        ) AS subject,
        list(consumer ORDER BY consumer) FILTER (WHERE successes > 0) AS consumers,
        CAST(sum(receives) AS BIGINT) AS receives,
        CAST(sum(attempts) AS BIGINT) AS attempts,
        CAST(sum(successes) AS BIGINT) AS successes
    FROM deliveries_seen
    GROUP BY message_id
),
dead AS (
    SELECT DISTINCT message_id FROM dead_letters
)
SELECT
    coalesce(p.message_id, h.message_id) AS message_id,
    coalesce(p.workflow_id, h.workflow_id) AS workflow_id,
    coalesce(p.trace_id, h.trace_id) AS trace_id,
    coalesce(p.subject, h.subject) AS subject,
    p.producer_service,
    p.published_at,
    coalesce(h.consumers, []) AS consumers,
    greatest(coalesce(h.receives, 0), coalesce(h.attempts, 0)) AS deliveries,
    CASE
        WHEN dead.message_id IS NOT NULL THEN 'dead_lettered'
        WHEN h.successes > 0 THEN 'processed'
        WHEN h.attempts > 0 THEN 'failed'
        WHEN h.receives > 0 THEN 'received'
        ELSE 'unconsumed'
    END AS outcome,
    coalesce(h.attempts, 0) AS attempts,
    coalesce(h.successes, 0) AS successes,
    p.message_id IS NOT NULL AS producer_seen
FROM published_messages AS p
FULL OUTER JOIN handled AS h ON h.message_id = p.message_id
LEFT JOIN dead ON dead.message_id = coalesce(p.message_id, h.message_id);
