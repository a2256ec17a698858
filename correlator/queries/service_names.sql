-- Services seen in spans or heartbeats, for the filter's choices (one column scan).
SELECT DISTINCT service FROM (
    SELECT service_name AS service FROM spans_raw
    UNION ALL
    SELECT service FROM heartbeats
)
WHERE service IS NOT NULL
ORDER BY 1;
