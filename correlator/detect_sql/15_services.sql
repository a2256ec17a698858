-- A service is down when every one of its instances is silent. Services that never
-- heartbeat (other instrumentations) are absent, and never called down.
-- recovered_at: the first heartbeat after the service's latest silence (a gap in
-- all its instances' heartbeats longer than silence_factor intervals), null when it
-- never went silent: a service back from an outage still works through its backlog.
CREATE OR REPLACE TEMP TABLE d_services AS
WITH beats AS (
    SELECT
        service,
        "at",
        coalesce(interval_s, 10.0) AS interval_s,
        lag("at") OVER (PARTITION BY service ORDER BY "at") AS previous_at
    FROM heartbeats
    WHERE "at" <= CAST($now AS TIMESTAMPTZ)
),
recoveries AS (
    SELECT service, max("at") AS recovered_at
    FROM beats
    WHERE epoch_us("at") - epoch_us(previous_at) > $silence_factor * interval_s * 1e6
    GROUP BY service
)
SELECT
    i.service,
    bool_and(i.silent) AS silent,
    -- every instance's last beat said it was stopping: stopped on purpose
    bool_and(i.stopped) AS stopped,
    max(i.last_seen) AS last_seen,
    arg_max(i.interval_s, i.last_seen) AS interval_s,
    sum(i.spans_dropped) AS spans_dropped,
    any_value(r.recovered_at) AS recovered_at
FROM d_instances AS i
LEFT JOIN recoveries AS r USING (service)
GROUP BY i.service;
