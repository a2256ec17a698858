-- The waterfall of one workflow: every processing attempt of each message by each
-- consumer, with its queue wait apart from its processing time.
SELECT subject, producer_service, consumer, consumer_service, message_id,
       published_at, started_at, ended_at, queue_wait_ms, processing_ms,
       attempt, status_code, clock_skew
FROM hops
WHERE workflow_id = $workflow_id
ORDER BY coalesce(published_at, started_at), started_at;
