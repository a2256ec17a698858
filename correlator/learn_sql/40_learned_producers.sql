-- Which services publish each subject: when a consumer's producer span is missing,
-- these are the services whose lost telemetry could explain it.
CREATE OR REPLACE TEMP TABLE learned_producers AS
SELECT subject, producer_service, count(*) AS messages
FROM publish_spans
WHERE subject IS NOT NULL
GROUP BY subject, producer_service;
