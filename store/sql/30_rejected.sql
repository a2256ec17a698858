-- Input the collector refused, with the reason and the raw bytes (capped).
-- Each once: a JetStream message redelivered after a crash (its stream_seq) writes
-- its rejects again at another received_at, and compaction's grace period lists an
-- hour twice; two spans of one payload refused for one reason are two (their raw
-- bytes differ). Input over HTTP carries no stream_seq: its received_at tells apart
-- two requests that sent the same bytes.
CREATE OR REPLACE VIEW rejected AS
SELECT *
FROM read_parquet('{store}/rejected/**/*.parquet', union_by_name = true, hive_partitioning = false)
QUALIFY row_number() OVER (
    PARTITION BY coalesce(CAST(stream_seq AS VARCHAR), CAST(received_at AS VARCHAR)),
        source, reason, size, hash(raw)
    ORDER BY received_at
) = 1;
