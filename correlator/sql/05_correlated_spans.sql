-- The spans every correlator view reads. For readers it is every span in the store
-- (99_correlated_spans.sql). While the views below are created it is the store's
-- empty schema seed: creating a view binds it, and binding the store's spans lists
-- and opens every segment, once per reference through the views below (seconds on
-- a store of many segments). The views keep their text, not that binding.
-- The detector's own connection re-points it at the spans of the workflows it is
-- re-evaluating (CREATE OR REPLACE VIEW correlated_spans AS SELECT * FROM <table>),
-- so one set of SQL serves a cold pass over all history and an incremental tick.
CREATE OR REPLACE VIEW correlated_spans AS
SELECT *
FROM read_parquet('{store}/spans/_schema.parquet');
