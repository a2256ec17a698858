"""Decoding OTLP JSON (the OTLP/HTTP JSON encoding) into span columns.

Per the OTLP specification's JSON mapping: keys are lowerCamelCase, trace and
span ids are hex strings (not base64), enums are integers, and 64-bit integers
may be strings. Non-UTF-8 bytes are read with ``surrogateescape`` so one bad
string damages only its span, which is stored repaired and flagged.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from collector.columnar_decoder import MalformedBatch
from collector.span_batch import OUT_OF_RANGE_NS, Rejects, number_or_none, raw_table
from instrumentation import semconv

_PROMOTED = {
    semconv.CHOREO_WORKFLOW_ID: "workflow_id",
    semconv.MESSAGING_DESTINATION_NAME: "subject",
    semconv.MESSAGING_MESSAGE_ID: "message_id",
    semconv.MESSAGING_OPERATION_TYPE: "operation",
    semconv.MESSAGING_CONSUMER_GROUP: "consumer_group",
}
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_TEXT_COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "name", "scope_name", "status_message",
    "attributes", "events", "links", "link_trace_id", "link_span_id", "workflow_id", "subject",
    "message_id", "operation", "consumer_group", "service_name", "service_instance_id", "resource",
)  # fmt: skip


def decode_otlp_json(payload: bytes, *, rejects: Rejects) -> pa.Table:
    """A ``RAW_SPANS`` table from one OTLP JSON request; raises ``MalformedBatch``."""
    try:
        request = json.loads(payload.decode("utf-8", "surrogateescape"))
    except ValueError as e:
        raise MalformedBatch(f"not JSON: {e}") from None
    except RecursionError:
        raise MalformedBatch("JSON nested too deeply to read") from None
    if not isinstance(request, dict) or not isinstance(request.get("resourceSpans", []), list):
        raise MalformedBatch("not an OTLP JSON ExportTraceServiceRequest (no resourceSpans list)")
    try:
        columns = _walk(request)
    except (AttributeError, TypeError, ValueError) as e:
        raise MalformedBatch(f"OTLP JSON of an unexpected shape: {e}") from None
    except KeyError as e:
        raise MalformedBatch(
            f"OTLP JSON of an unexpected shape: a KeyValue (attribute) lacks {e}"
        ) from None
    except RecursionError:
        raise MalformedBatch("OTLP JSON attribute values nested too deeply") from None
    flags = _repair_text(columns)
    if any(flags):
        columns["ingest_flags"] = flags
        rejects.add(
            reason=f"non-UTF-8 text in {sum(1 for f in flags if f)} span(s) replaced with "
            "U+FFFD; the spans are stored, flagged invalid_utf8",
            raw=payload,
        )
    return raw_table(columns)


def _walk(request: dict[str, Any]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {
        name: []
        for name in (*_TEXT_COLUMNS, "kind", "start_ns", "end_ns", "status_code", "nak_delay_ms")
    }
    for resource_spans in request.get("resourceSpans") or []:
        resource = _key_values((resource_spans.get("resource") or {}).get("attributes"))
        resource_json = _dumps(resource)
        for scope_spans in resource_spans.get("scopeSpans") or []:
            scope = (scope_spans.get("scope") or {}).get("name") or None
            for span in scope_spans.get("spans") or []:
                attributes = _key_values(span.get("attributes"))
                status = span.get("status") or {}
                columns["trace_id"].append(_id(span.get("traceId")))
                columns["span_id"].append(_id(span.get("spanId")))
                columns["parent_span_id"].append(_id(span.get("parentSpanId")) or None)
                columns["name"].append(span.get("name", ""))
                columns["scope_name"].append(scope)
                columns["kind"].append(int(span.get("kind", 0)))
                columns["start_ns"].append(_nanos(span.get("startTimeUnixNano")))
                columns["end_ns"].append(_nanos(span.get("endTimeUnixNano")))
                columns["status_code"].append(int(status.get("code", 0)))
                columns["status_message"].append(status.get("message") or None)
                columns["attributes"].append(_dumps(attributes))
                columns["events"].append(_events(span.get("events")))
                links = span.get("links") or [{}]
                columns["links"].append(_links(span.get("links")))
                columns["link_trace_id"].append(_id(links[0].get("traceId")))
                columns["link_span_id"].append(_id(links[0].get("spanId")))
                for key, column in _PROMOTED.items():
                    value = attributes.get(key)
                    columns[column].append(None if value is None else str(value))
                columns["nak_delay_ms"].append(
                    number_or_none(attributes.get(semconv.CHOREO_NAK_DELAY_MS))
                )
                columns["service_name"].append(_str(resource.get(semconv.SERVICE_NAME)))
                columns["service_instance_id"].append(
                    _str(resource.get(semconv.SERVICE_INSTANCE_ID))
                )
                columns["resource"].append(resource_json)
    return columns


def _repair_text(columns: dict[str, list[Any]]) -> list[str | None]:
    """Replace lone surrogates (undecodable bytes) in text columns; flag those spans."""
    n = len(columns["trace_id"])
    flags: list[str | None] = [None] * n
    for name in _TEXT_COLUMNS:
        values = columns[name]
        for i, value in enumerate(values):
            if value is None or value.isascii():
                continue
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                values[i] = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                flags[i] = "invalid_utf8"
    return flags


def _key_values(pairs: Any) -> dict[str, Any]:
    return {kv["key"]: _any_value(kv.get("value") or {}) for kv in pairs or []}


def _any_value(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [_any_value(v) for v in (value["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in value:
        return _key_values((value["kvlistValue"] or {}).get("values"))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def _id(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _nanos(value: Any) -> int:
    try:
        nanos = int(value)
    except (TypeError, ValueError):
        return OUT_OF_RANGE_NS
    return nanos if -(2**63) <= nanos < 2**63 else OUT_OF_RANGE_NS


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _events(events: Any) -> str | None:
    if not events:
        return None
    return _dumps(
        [
            {
                "name": e.get("name", ""),
                "time_unix_nano": _nanos(e.get("timeUnixNano")),
                "attributes": _key_values(e.get("attributes")),
            }
            for e in events
        ]
    )


def _links(links: Any) -> str | None:
    if not links:
        return None
    return _dumps(
        [
            {
                "trace_id": _id(link.get("traceId")),
                "span_id": _id(link.get("spanId")),
                "attributes": _key_values(link.get("attributes")),
            }
            for link in links
        ]
    )
