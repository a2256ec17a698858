-- Services seen in spans or heartbeats, for the filter's choices.
SELECT DISTINCT service FROM (
    SELECT producer_service AS service FROM edges
    UNION SELECT consumer_service FROM edges
    UNION SELECT service FROM heartbeats
)
WHERE service IS NOT NULL
ORDER BY 1;
