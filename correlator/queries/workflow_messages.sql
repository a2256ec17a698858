-- Messages of one workflow and how each ended; those nobody processed are where a
-- waterfall stops.
SELECT message_id, subject, producer_service, published_at, consumers, deliveries, outcome
FROM messages
WHERE workflow_id = $workflow_id
ORDER BY published_at;
