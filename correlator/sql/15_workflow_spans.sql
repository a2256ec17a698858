-- Every span with the workflow it belongs to. A span's own choreo.workflow.id wins
-- (it survives broken trace context); otherwise its trace's (inherited_workflows).
-- consumer: the consumer group, or the consuming service where spans carry no group
-- (DESIGN.md: "the consuming service stands in for it").
-- span_key, parent_key and ref_key (the span its link, else its parent, points at)
-- are 64-bit hashes of (trace id, span id): the correlator joins spans on them
-- instead of on two hex strings, which made every span-to-span join several times
-- dearer. The joins that use them also compare the span id itself (span_ref), so a
-- hash collision can never pair the wrong spans.
CREATE OR REPLACE VIEW workflow_spans AS
SELECT
    s.* EXCLUDE (workflow_id),
    coalesce(s.workflow_id, i.workflow_id, s.trace_id) AS workflow_id,
    coalesce(s.consumer_group, s.service_name) AS consumer,
    hash(s.trace_id, s.span_id) AS span_key,
    CASE WHEN s.parent_span_id IS NOT NULL THEN hash(s.trace_id, s.parent_span_id) END
        AS parent_key,
    CASE WHEN coalesce(s.link_span_id, s.parent_span_id) IS NOT NULL
        THEN hash(
            coalesce(s.link_trace_id, s.trace_id), coalesce(s.link_span_id, s.parent_span_id)
        )
    END AS ref_key
FROM correlated_spans AS s
LEFT JOIN inherited_workflows AS i ON s.workflow_id IS NULL AND i.trace_id = s.trace_id;
