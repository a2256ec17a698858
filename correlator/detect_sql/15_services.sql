-- A service is down when every one of its instances is silent. Services that never
-- heartbeat (other instrumentations) are absent, and never called down.
CREATE OR REPLACE TEMP TABLE d_services AS
SELECT
    service,
    bool_and(silent) AS silent,
    max(last_seen) AS last_seen,
    arg_max(interval_s, last_seen) AS interval_s,
    sum(spans_dropped) AS spans_dropped
FROM d_instances
GROUP BY service;
