-- Messages of one workflow and how each ended; those an expected consumer group has
-- not handled are where a waterfall stops. expected_consumers comes from the
-- choreography model: a message with none (a terminal event) is not waiting for
-- anyone, and a group deployed after it was published (expected_since) is not owed
-- it, as detection judges (30_deliveries.sql). A fan-out message that some groups
-- processed still waits on the others (orders.created processed by fraud and
-- inventory, never received by payment), so the waterfall compares the expected
-- groups with those that attempted it, not the message's outcome. received_by: the
-- groups that received it (a receive span), so a handler that hangs reads as
-- received, not as never received. model_known is false until the correlator has
-- learned or been given a model.
SELECT
    m.message_id,
    m.subject,
    m.producer_service,
    m.published_at,
    m.consumers,
    m.deliveries,
    m.outcome,
    coalesce(
        (SELECT list(DISTINCT s.consumer ORDER BY s.consumer)
         FROM choreography_steps AS s
         WHERE s.subject = m.subject
             AND (s.expected_since IS NULL OR m.published_at IS NULL
                  OR m.published_at >= s.expected_since)),
        []
    ) AS expected_consumers,
    coalesce(
        (SELECT list(DISTINCT d.consumer ORDER BY d.consumer)
         FROM deliveries_seen AS d
         WHERE d.message_id = m.message_id AND d.subject = m.subject AND d.receives > 0),
        []
    ) AS received_by,
    EXISTS (SELECT 1 FROM choreography_steps) AS model_known
FROM messages AS m
WHERE m.workflow_id = $workflow_id
ORDER BY m.published_at;
