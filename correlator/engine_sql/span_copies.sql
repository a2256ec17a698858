-- Whether any span of the pass was stored more than once (a batch redelivered
-- after a collector restart): a narrow aggregate over a 64-bit hash of the ids, far
-- cheaper than deduplicating every span. A hash collision only sends two spans
-- through the exact deduplication of stored_spans, which keeps both.
SELECT count(*) AS copied
FROM (
    SELECT hash(trace_id, span_id) AS copy_key
    FROM pass_spans
    GROUP BY copy_key
    HAVING count(*) > 1
)
