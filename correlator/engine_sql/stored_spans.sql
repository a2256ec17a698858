-- Every stored span once, for a cold pass, when some were stored more than once
-- (span_copies found copies): only the rows of copied spans go through the
-- window that picks the first copy to arrive, not every span. pass_spans: the spans
-- of the pass's segments, listed once so every statement reads the same ones.
WITH stored AS MATERIALIZED (
    SELECT *, hash(trace_id, span_id) AS copy_key
    FROM pass_spans
),
copied AS (
    SELECT copy_key FROM stored GROUP BY copy_key HAVING count(*) > 1
)
SELECT * EXCLUDE (copy_key)
FROM stored
ANTI JOIN copied USING (copy_key)
UNION ALL
SELECT * EXCLUDE (copy_key)
FROM (SELECT * FROM stored SEMI JOIN copied USING (copy_key))
QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY received_at) = 1
