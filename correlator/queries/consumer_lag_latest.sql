-- Each JetStream consumer's lag as of its newest sample (the collector samples
-- every consumer every few seconds): its backlog (in the stream, not yet delivered
-- to it), what it holds unacked, and when it last got a message. A consumer that no
-- sample of the last minute names (deleted, or its stream gone) is left out, and so
-- is everything when no collector sampled for a day. The most behind first.
SELECT
    stream,
    consumer,
    num_pending AS backlog,
    num_ack_pending AS unacked,
    num_redelivered AS redelivered,
    last_delivered_at,
    filter_subject,
    num_waiting AS waiting_pulls,
    "at" AS sampled_at
FROM consumer_lag
WHERE "at" >= now() - INTERVAL 1 DAY  -- older samples say nothing of now, and are skipped
    AND "at" >= (
        SELECT max("at") FROM consumer_lag WHERE "at" >= now() - INTERVAL 1 DAY
    ) - INTERVAL 60 SECOND
QUALIFY row_number() OVER (PARTITION BY stream, consumer ORDER BY "at" DESC) = 1
ORDER BY backlog DESC, unacked DESC, stream, consumer;
