-- Once every view is created: the spans the correlator's views read are every span
-- in the store (see 05_correlated_spans.sql).
CREATE OR REPLACE VIEW correlated_spans AS
SELECT *
FROM spans;
