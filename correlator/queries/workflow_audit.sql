-- Captured inputs and outputs (audit capture on), one row per span that has any.
-- try(): a span whose attributes are not valid JSON (another exporter's) shows
-- without them rather than failing the whole page.
SELECT
    start_time,
    service_name AS service,
    name,
    try(json_extract_string(attributes, '$."choreo.audit.input"')) AS input,
    try(json_extract_string(attributes, '$."choreo.audit.output"')) AS output
FROM workflow_spans
WHERE workflow_id = $workflow_id
  AND (coalesce(try(json_exists(attributes, '$."choreo.audit.input"')), false)
       OR coalesce(try(json_exists(attributes, '$."choreo.audit.output"')), false))
ORDER BY start_time;
