"""Stock OTLP: SDK spans as one ``ExportTraceServiceRequest`` protobuf.

Any OpenTelemetry backend reads it; it costs the agent several times what the
columnar batch costs, so it is the exporter's option, not its default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.trace import ReadableSpan

_OTLP_KIND_OFFSET = 1


def _any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[_any_value(v) for v in value]))
    return AnyValue(string_value=str(value))


def _key_values(attributes: Mapping[str, Any] | None) -> list[KeyValue]:
    return [KeyValue(key=k, value=_any_value(v)) for k, v in (attributes or {}).items()]


def _span(span: ReadableSpan) -> trace_pb2.Span:
    context = span.context
    out = trace_pb2.Span(
        trace_id=context.trace_id.to_bytes(16, "big"),
        span_id=context.span_id.to_bytes(8, "big"),
        trace_state=context.trace_state.to_header() if context.trace_state else "",
        name=span.name,
        kind=span.kind.value + _OTLP_KIND_OFFSET,
        start_time_unix_nano=span.start_time or 0,
        end_time_unix_nano=span.end_time or 0,
        attributes=_key_values(span.attributes),
        dropped_attributes_count=span.dropped_attributes,
        dropped_events_count=span.dropped_events,
        dropped_links_count=span.dropped_links,
        status=trace_pb2.Status(
            code=span.status.status_code.value, message=span.status.description or ""
        ),
    )
    if span.parent is not None:
        out.parent_span_id = span.parent.span_id.to_bytes(8, "big")
    for event in span.events:
        out.events.append(
            trace_pb2.Span.Event(
                name=event.name,
                time_unix_nano=event.timestamp,
                attributes=_key_values(event.attributes),
            )
        )
    for link in span.links:
        out.links.append(
            trace_pb2.Span.Link(
                trace_id=link.context.trace_id.to_bytes(16, "big"),
                span_id=link.context.span_id.to_bytes(8, "big"),
                attributes=_key_values(link.attributes),
            )
        )
    return out


def encode_otlp_batch(spans: Sequence[ReadableSpan]) -> bytes:
    """Encode ``spans`` as a serialized ``ExportTraceServiceRequest``.

    Spans are grouped by resource, then by instrumentation scope, as OTLP requires.
    """
    request = ExportTraceServiceRequest()
    by_resource: dict[int, tuple[Any, dict[tuple[str, str], list[ReadableSpan]]]] = {}
    for span in spans:
        resource_entry = by_resource.setdefault(id(span.resource), (span.resource, {}))
        scope = span.instrumentation_scope
        scope_key = (scope.name, scope.version or "") if scope is not None else ("", "")
        resource_entry[1].setdefault(scope_key, []).append(span)
    for resource, scopes in by_resource.values():
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(_key_values(resource.attributes))
        for (scope_name, scope_version), scope_spans_list in scopes.items():
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = scope_name
            scope_spans.scope.version = scope_version
            scope_spans.spans.extend(_span(s) for s in scope_spans_list)
    return request.SerializeToString()
