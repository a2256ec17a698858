-- The projection every spans segment is written with. The columnar format does not
-- carry the first link's ids, so they are taken from the links JSON here, where
-- DuckDB parses in parallel with the write (a regex in Arrow cost ~1 µs a span).
-- try() keeps one malformed links value from failing the whole segment.
SELECT * REPLACE (
    coalesce(link_trace_id, try(json_extract_string(links, '$[0].trace_id'))) AS link_trace_id,
    coalesce(link_span_id, try(json_extract_string(links, '$[0].span_id'))) AS link_span_id
)
FROM segment_rows
