-- The projection every spans segment is written with. The columnar format does not
-- carry the first link's ids, so they are taken from the links JSON here, where
-- DuckDB parses in parallel with the write (a regex in Arrow cost ~1 µs a span).
-- try() keeps one malformed links value from failing the whole segment.
-- A span with more than one link (a batch consumer's) is flagged several_links: a
-- reader finds the few such spans by that flag, without parsing every span's links
-- (the LIKE spares a JSON parse of the spans with one link).
SELECT * REPLACE (
    coalesce(link_trace_id, try(json_extract_string(links, '$[0].trace_id'))) AS link_trace_id,
    coalesce(link_span_id, try(json_extract_string(links, '$[0].span_id'))) AS link_span_id,
    CASE
        WHEN links LIKE '%"span_id"%"span_id"%'
            AND coalesce(try(json_array_length(links)), 0) > 1
            AND NOT coalesce(contains(ingest_flags, 'several_links'), false)
        THEN concat_ws(',', ingest_flags, 'several_links')
        ELSE ingest_flags
    END AS ingest_flags
)
FROM segment_rows
