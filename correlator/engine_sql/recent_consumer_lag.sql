-- Each JetStream consumer's newest sample in the minute before $now (the collector
-- samples every 10 s), from the correlator's memory of consumer_lag: the backlog a
-- consumer_down finding names. An older sample says nothing of now.
SELECT consumer, filter_subject, num_pending, "at"
FROM consumer_lag
WHERE "at" BETWEEN CAST($now AS TIMESTAMPTZ) - INTERVAL 60 SECOND AND CAST($now AS TIMESTAMPTZ)
QUALIFY row_number() OVER (PARTITION BY stream, consumer ORDER BY "at" DESC) = 1
