-- The spans every correlator view reads. For readers it is every span in the store.
-- The detector's own connection re-points it at the spans of the workflows it is
-- re-evaluating (CREATE OR REPLACE VIEW correlated_spans AS SELECT * FROM <table>),
-- so one set of SQL serves a cold pass over all history and an incremental tick.
CREATE OR REPLACE VIEW correlated_spans AS
SELECT *
FROM spans;
