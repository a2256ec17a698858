-- Problems the correlator found and explained (`choreoscope correlate` writes the
-- files; a fresh store reads as empty). `detail` is the explanation a user reads;
-- `evidence` (JSON) the facts behind it; `resolved_at` is set once a later pass
-- no longer finds the problem (a hung handler that finally finished).
--
-- Each findings table is a folder of immutable generations, one per write, the
-- newest named first (correlator/findings_files.py): a query reads the newest of
-- each, found by `glob` and joined on the scan's file name, so that DuckDB opens
-- that one file only (and, for the schema, the first listed: the newest too). The
-- `glob` comes first: DuckDB lists files when it binds a query, in the order it
-- names them, so the newest it finds is in the scan's list (a superseded file stays
-- a minute after it is), and the query reads one generation's rows, never none and
-- never two.
CREATE OR REPLACE VIEW anomalies AS
SELECT * EXCLUDE (newest, filename)
FROM (
    SELECT * FROM (SELECT min(file) AS newest FROM glob('{store}/findings/anomalies/*.parquet'))
    JOIN read_parquet('{store}/findings/anomalies/*.parquet', filename = true)
        ON filename = newest
    UNION ALL BY NAME
    SELECT * FROM (
        SELECT min(file) AS newest FROM glob('{store}/findings/anomalies_recent/*.parquet')
    )
    JOIN read_parquet('{store}/findings/anomalies_recent/*.parquet', filename = true)
        ON filename = newest
    -- `webhook_at` came later: a store whose newest files were written before it
    -- still has the column (null in their rows, until the correlator rewrites them)
    UNION ALL BY NAME
    SELECT NULL::VARCHAR AS anomaly_id, NULL::TIMESTAMPTZ AS webhook_at WHERE false
)
-- the correlator rewrites the full table now and then and, at every pass, a small one
-- of the anomalies changed since: each anomaly's highest revision is its state
QUALIFY row_number() OVER (PARTITION BY anomaly_id ORDER BY revision DESC NULLS LAST) = 1;
