-- Synthetic spans for the dashboard benchmark, shaped like the instrumentation's:
-- per hop a publish (producer), a receive and a process span (consumer), three hops
-- per recruitment workflow. One workflow in 50 is stalled (its last message is never
-- received), one in 50 failed (the scorer raises, so nothing follows).
-- Parameters: $workflows, $start (first workflow), $spacing_us (between workflows).
WITH runs AS (
    SELECT
        i AS w,
        $start + to_microseconds(CAST(i * $spacing_us AS BIGINT)) AS t0,
        CASE i % 50 WHEN 7 THEN 'stalled' WHEN 13 THEN 'failed' ELSE 'ok' END AS fate
    FROM range($workflows) AS r(i)
),
hops(k, producer, subject, consumer) AS (
    VALUES (0, 'intake', 'recruit.cv.submitted', 'parser'),
           (1, 'parser', 'recruit.cv.parsed', 'scorer'),
           (2, 'scorer', 'recruit.candidate.scored', 'notifier')
),
parts(j, op, kind) AS (
    VALUES (0, 'send', 'producer'), (1, 'receive', 'client'), (2, 'process', 'consumer')
),
spans AS (
    SELECT
        w, k, j, fate, op, kind, subject,
        CASE WHEN j = 0 THEN producer ELSE consumer END AS service,
        t0 + to_milliseconds(k * 1200 + CASE j WHEN 0 THEN 0 ELSE 40 + (w * 7 + k) % 60 END) AS started,
        CASE WHEN j = 2 THEN 200 + (w * 13 + k) % 400 ELSE CASE j WHEN 0 THEN 2 ELSE 0 END END AS ms,
        lpad(format('{:x}', w), 32, '0') AS trace_id,
        lpad(format('{:x}', w * 9 + k * 3 + j + 1), 16, '0') AS span_id,
        lpad(format('{:x}', w * 9 + k * 3 + 1), 16, '0') AS publish_span_id,
        CASE WHEN k > 0 THEN lpad(format('{:x}', w * 9 + (k - 1) * 3 + 3), 16, '0') END
            AS previous_process_id,
        md5(format('{}-{}', w, k))[:26] AS message_id,
        format('wf-{}', w) AS workflow_id,
        fate = 'failed' AND k = 1 AND j = 2 AS raised
    FROM runs, hops, parts
    WHERE NOT (fate = 'stalled' AND k = 2 AND j > 0) AND NOT (fate = 'failed' AND k = 2)
)
SELECT
    trace_id,
    span_id,
    CASE WHEN j = 0 THEN previous_process_id ELSE publish_span_id END AS parent_span_id,
    format('{} {}', CASE op WHEN 'send' THEN 'publish' ELSE op END, subject) AS name,
    kind,
    service AS service_name,
    service || '-1' AS service_instance_id,
    'choreoscope.instrumentation' AS scope_name,
    started AS start_time,
    started + to_milliseconds(ms) AS end_time,
    CAST(ms AS DOUBLE) AS duration_ms,
    CASE WHEN raised THEN 'error' WHEN j = 2 THEN 'ok' ELSE 'unset' END AS status_code,
    CASE WHEN raised THEN 'scorer model timed out' END AS status_message,
    CAST(json_object(
        'messaging.system', 'nats',
        'messaging.destination.name', subject,
        'messaging.operation.type', op,
        'messaging.message.id', message_id,
        'choreo.workflow.id', workflow_id,
        'candidate.id', format('cand-{}', w)
    ) AS VARCHAR) AS attributes,
    CAST(json_object('service.name', service) AS VARCHAR) AS resource,
    NULL::VARCHAR AS events,
    CASE WHEN j > 0 THEN format('[{{"trace_id": "{}", "span_id": "{}"}}]', trace_id, publish_span_id)
    END AS links,
    workflow_id,
    subject,
    message_id,
    op AS operation,
    CASE WHEN j > 0 THEN service END AS consumer_group,
    CASE WHEN j > 0 THEN trace_id END AS link_trace_id,
    CASE WHEN j > 0 THEN publish_span_id END AS link_span_id,
    started + to_milliseconds(ms + 50) AS received_at,
    service || '-exporter' AS exporter_id,
    NULL::VARCHAR AS ingest_flags,
    NULL::BIGINT AS exporter_batch_seq,
    NULL::BIGINT AS exporter_spans_dropped
FROM spans
ORDER BY start_time;
