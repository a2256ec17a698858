-- Messages of one workflow and how each ended; those nobody processed are where a
-- waterfall stops. expected_consumers comes from the choreography model: a message
-- with none (a terminal event) is not waiting for anyone. model_known is false until
-- the correlator has learned or been given a model.
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
         WHERE s.subject = m.subject),
        []
    ) AS expected_consumers,
    EXISTS (SELECT 1 FROM choreography_steps) AS model_known
FROM messages AS m
WHERE m.workflow_id = $workflow_id
ORDER BY m.published_at;
