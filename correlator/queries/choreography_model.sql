-- The choreography model's steps, learned and declared side by side: who is
-- expected to consume each subject, and how fast (to the tenth of a millisecond).
SELECT subject, consumer, consumer_service, source, samples, round(p50_ms, 1) AS p50_ms,
       round(p95_ms, 1) AS p95_ms, deadline_s, sla_s
FROM choreography_steps
ORDER BY subject, consumer, source;
