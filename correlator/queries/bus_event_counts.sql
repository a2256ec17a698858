-- JetStream advisories by consumer and kind: redeliveries, terminations, dead letters.
SELECT stream, consumer, kind, count(*) AS events, max("at") AS last_at
FROM bus_events
GROUP BY ALL
ORDER BY events DESC;
