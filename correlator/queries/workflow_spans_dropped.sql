-- Spans the run's services reported dropping while it ran, per instance that handled
-- it: the run's picture (its timeline, its verdict) may then lack their spans. The
-- correlator records such a loss once per service (a telemetry_gap with no
-- workflow), so without this the run of a service that lost spans read "completed"
-- with no sign its telemetry was incomplete. From the instance's heartbeats (their
-- running spans_dropped count, on the sender's clock like its spans): the count at
-- its last beat up to the run's start, against the count at its first beat after the
-- run ended (which reports what was dropped until then), or at its latest beat while
-- the run is not over. An instance whose spans name none is matched by service.
WITH run AS (
    SELECT started_at,
           CASE WHEN status = 'completed' THEN coalesce(ended_at, last_activity_at) END
               AS ended_at
    FROM workflows
    WHERE workflow_id = $workflow_id
),
instances AS (
    SELECT DISTINCT service_name AS service, service_instance_id AS instance
    FROM workflow_spans
    WHERE workflow_id = $workflow_id AND service_name IS NOT NULL
),
beats AS (
    SELECT h.service, h.instance, h."at", h.spans_dropped, r.started_at, r.ended_at
    FROM heartbeats AS h
    JOIN instances AS i
        ON h.service = i.service AND (i.instance IS NULL OR h.instance = i.instance)
    CROSS JOIN run AS r
),
counts AS (
    SELECT service, instance,
           coalesce(max(spans_dropped) FILTER (WHERE "at" <= started_at), 0) AS dropped_before,
           coalesce(
               arg_min(spans_dropped, "at") FILTER (WHERE "at" >= ended_at),
               max(spans_dropped)
           ) AS dropped_until,
           coalesce(min("at") FILTER (WHERE "at" >= ended_at), max("at")) AS counted_until
    FROM beats
    GROUP BY service, instance
)
SELECT c.service,
       c.instance,
       c.dropped_until - c.dropped_before AS spans_dropped,
       -- the first beat that reported a drop the run was in flight for
       min(b."at") FILTER (
           WHERE b."at" > b.started_at AND b."at" <= c.counted_until
               AND b.spans_dropped > c.dropped_before
       ) AS first_reported_at,
       c.counted_until AS last_reported_at
FROM counts AS c
JOIN beats AS b USING (service, instance)
WHERE c.dropped_until > c.dropped_before
GROUP BY ALL
ORDER BY c.service, c.instance;
