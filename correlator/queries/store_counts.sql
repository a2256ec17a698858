-- Is there anything to show? Counts from Parquet metadata only (spans_raw, not
-- the deduplicating spans view), so this stays cheap on a large store.
SELECT
    (SELECT count(*) FROM spans_raw) AS spans,
    (SELECT count(*) FROM heartbeats) AS heartbeats;
