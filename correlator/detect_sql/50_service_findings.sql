-- telemetry_gap about a whole service: an instance whose exporter reported dropping
-- spans, or a service all of whose instances went silent (within silent_horizon_s,
-- so a service retired long ago is not reported forever), unless each said in its
-- last beat that it was stopping: a service stopped on purpose lost no telemetry.
CREATE OR REPLACE TEMP TABLE d_service_findings AS
SELECT
    'telemetry_gap' AS kind,
    'spans_dropped' AS root_cause,
    service,
    instance,
    last_seen,
    spans_dropped
FROM d_instances
WHERE spans_dropped > 0
UNION ALL BY NAME
SELECT
    'telemetry_gap' AS kind,
    'service_silent' AS root_cause,
    service,
    last_heard AS last_seen,  -- the collector's clock, as `now` (10_instances.sql)
    interval_s,
    (epoch_us(CAST($now AS TIMESTAMPTZ)) - epoch_us(last_heard)) / 1e6 AS waited_s
FROM d_services
WHERE silent AND NOT stopped
    AND (epoch_us(CAST($now AS TIMESTAMPTZ)) - epoch_us(last_heard)) / 1e6 <= $silent_horizon_s;
