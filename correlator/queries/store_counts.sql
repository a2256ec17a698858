-- Is there anything to show? Counts from Parquet metadata only (spans_raw, not
-- the deduplicating spans view), so this stays cheap on a large store.
-- judged: the workflows the correlator gave a status (its findings files; zero
-- until a correlator has made its first pass over the store).
SELECT
    (SELECT count(*) FROM spans_raw) AS spans,
    (SELECT count(*) FROM heartbeats) AS heartbeats,
    (SELECT count(*) FROM workflow_status) AS judged;
