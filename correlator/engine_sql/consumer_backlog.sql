-- The backlog JetStream holds for consumer group $group's deliveries of $subject: the
-- pending messages of the consumers that serve it (01_nats_names.sql), each as
-- sampled last in the minute before $now (the collector samples every 10 s), from
-- the correlator's memory of consumer_lag. An older sample says nothing of now.
-- No row when no sample of a serving consumer is that recent.
SELECT sum(coalesce(num_pending, 0)) AS pending, max("at") AS sampled_at
FROM (
    SELECT consumer, filter_subject, num_pending, "at"
    FROM consumer_lag
    WHERE "at" BETWEEN CAST($now AS TIMESTAMPTZ) - INTERVAL 60 SECOND
        AND CAST($now AS TIMESTAMPTZ)
    QUALIFY row_number() OVER (PARTITION BY stream, consumer ORDER BY "at" DESC) = 1
)
WHERE serves_group(consumer, filter_subject, $group, $subject)
HAVING count(*) > 0;
