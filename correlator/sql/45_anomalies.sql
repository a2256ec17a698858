-- Problems the correlator found and explained (`choreoscope correlate` writes the
-- file; a fresh store reads as empty). `detail` is the explanation a user reads;
-- `evidence` (JSON) the facts behind it; `resolved_at` is set once a later pass
-- no longer finds the problem (a hung handler that finally finished).
CREATE OR REPLACE VIEW anomalies AS
SELECT *
FROM read_parquet('{store}/findings/anomalies.parquet');
