-- Captured inputs and outputs (audit capture on), one row per span that has any.
SELECT
    start_time,
    service_name AS service,
    name,
    json_extract_string(attributes, '$."choreo.audit.input"') AS input,
    json_extract_string(attributes, '$."choreo.audit.output"') AS output
FROM workflow_spans
WHERE workflow_id = $workflow_id
  AND (json_exists(attributes, '$."choreo.audit.input"')
       OR json_exists(attributes, '$."choreo.audit.output"'))
ORDER BY start_time;
