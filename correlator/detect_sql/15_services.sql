-- A service is down when every one of its instances is silent. Services that never
-- heartbeat (other instrumentations) are absent, and never called down.
-- recovered_at: the first heartbeat after the service's latest silence (a gap in
-- all its instances' heartbeats longer than silence_factor intervals), null when it
-- never went silent: a service back from an outage still works through its backlog.
CREATE OR REPLACE TEMP TABLE d_services AS
WITH beats AS (
    -- by when the collector stored them, as silence is judged (10_instances.sql)
    SELECT
        service,
        heard,
        coalesce(interval_s, 10.0) AS interval_s,
        lag(heard) OVER (PARTITION BY service ORDER BY heard) AS previous_heard
    FROM (SELECT *, coalesce(received_at, "at") AS heard FROM heartbeats)
    WHERE heard <= CAST($now AS TIMESTAMPTZ)
),
recoveries AS (
    SELECT service, max(heard) AS recovered_at
    FROM beats
    WHERE epoch_us(heard) - epoch_us(previous_heard) > $silence_factor * interval_s * 1e6
    GROUP BY service
)
SELECT
    i.service,
    bool_and(i.silent) AS silent,
    -- every instance's last beat said it was stopping: stopped on purpose
    bool_and(i.stopped) AS stopped,
    max(i.last_seen) AS last_seen,
    max(i.last_heard) AS last_heard,
    arg_max(i.interval_s, i.last_seen) AS interval_s,
    sum(i.spans_dropped) AS spans_dropped,
    any_value(r.recovered_at) AS recovered_at
FROM d_instances AS i
LEFT JOIN recoveries AS r USING (service)
GROUP BY i.service;
