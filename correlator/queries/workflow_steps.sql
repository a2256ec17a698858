-- Every span of one workflow, as the step table shows it. The error text is the
-- status message, else the first exception event's message. try(): attributes or
-- events that are not valid JSON (another exporter's) leave those cells empty
-- rather than failing the whole table.
SELECT
    start_time,
    service_name AS service,
    name,
    operation,
    subject,
    message_id,
    TRY_CAST(try(json_extract_string(attributes, '$."messaging.nats.delivery_count"')) AS BIGINT)
        AS delivery,
    status_code AS status,
    coalesce(
        status_message,
        try(json_extract_string(events, '$[0].attributes."exception.message"'))
    ) AS error,
    duration_ms,
    trace_id,
    span_id
FROM workflow_spans
WHERE workflow_id = $workflow_id
ORDER BY start_time, end_time;
