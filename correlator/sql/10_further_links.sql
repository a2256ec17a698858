-- The links of a span after its first, whose ids are columns of their own
-- (link_trace_id, link_span_id): a batch consumer's span links to every message it
-- handled (OpenTelemetry's shape for batch processing), and is a delivery of each.
-- NULL for a span the collector did not flag several_links: nearly every span, so
-- a reader filters on the flag (row groups without flags are skipped) before this
-- parses any JSON. A links value that is not the JSON the collector writes gives
-- NULL, so one bad span fails no pass.
CREATE OR REPLACE MACRO further_links(links, ingest_flags) AS
    CASE WHEN contains(ingest_flags, 'several_links')
        THEN try(from_json(links, '[{"trace_id": "VARCHAR", "span_id": "VARCHAR"}]'))[2:]
    END;
