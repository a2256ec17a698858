-- JetStream advisories by consumer and kind: redeliveries, terminations, dead letters,
-- recorded in the window.
SELECT stream, consumer, kind, count(*) AS events, max("at") AS last_at
FROM bus_events
WHERE "at" >= $since
GROUP BY ALL
ORDER BY events DESC;
