-- Problems the correlator found and explained (`choreoscope correlate` writes the
-- files; a fresh store reads as empty). `detail` is the explanation a user reads;
-- `evidence` (JSON) the facts behind it; `resolved_at` is set once a later pass
-- no longer finds the problem (a hung handler that finally finished).
CREATE OR REPLACE VIEW anomalies AS
SELECT *
FROM read_parquet(
    ['{store}/findings/anomalies.parquet', '{store}/findings/anomalies_recent.parquet'],
    union_by_name = true
)
-- the correlator rewrites the full file now and then and, at every pass, a small file
-- of the anomalies changed since: each anomaly's highest revision is its state
QUALIFY row_number() OVER (PARTITION BY anomaly_id ORDER BY revision DESC NULLS LAST) = 1;
