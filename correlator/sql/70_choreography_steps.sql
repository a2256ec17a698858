-- The choreography model's steps: expected consumers of each subject with their
-- latency quantiles and deadlines (learned, or declared in choreography.yaml).
CREATE OR REPLACE VIEW choreography_steps AS
SELECT *
FROM read_parquet('{store}/findings/model_steps.parquet');
