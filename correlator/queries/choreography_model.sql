-- The choreography model's steps, learned and declared side by side: who is
-- expected to consume each subject, and how fast.
SELECT subject, consumer, consumer_service, source, samples, p50_ms, p95_ms,
       deadline_s, sla_s
FROM choreography_steps
ORDER BY subject, consumer, source;
