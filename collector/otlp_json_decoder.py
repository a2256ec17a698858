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
from collector.rejects import Rejects
from collector.span_batch import OUT_OF_RANGE_NS, number_or_none, raw_table
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
        columns = _walk(request, rejects=rejects)
    except _SHAPE_ERRORS as e:
        raise MalformedBatch(f"OTLP JSON of an unexpected shape: {_why(e)}") from None
    flags = _repair_text(columns)
    if any(flags):
        columns["ingest_flags"] = flags
        rejects.add(
            reason=f"non-UTF-8 text in {sum(1 for f in flags if f)} span(s) replaced with "
            "U+FFFD; the spans are stored, flagged invalid_utf8",
            raw=payload,
        )
    return raw_table(columns)


# what a value of an unexpected shape raises while a span is read
_SHAPE_ERRORS = (AttributeError, TypeError, ValueError, KeyError, OverflowError, RecursionError)
_ROW = (
    "trace_id", "span_id", "parent_span_id", "name", "scope_name", "kind", "start_ns",
    "end_ns", "status_code", "status_message", "attributes", "events", "links",
    "link_trace_id", "link_span_id", *_PROMOTED.values(), "nak_delay_ms", "service_name",
    "service_instance_id", "resource",
)  # fmt: skip


def _walk(request: dict[str, Any], *, rejects: Rejects) -> dict[str, list[Any]]:
    """The span columns of a request. A span (or a resource, with its spans) of an
    unexpected shape is rejected alone, as JSON; the others are kept."""
    columns: dict[str, list[Any]] = {name: [] for name in _ROW}
    for resource_spans in request.get("resourceSpans") or []:
        try:
            resource = _key_values((resource_spans.get("resource") or {}).get("attributes"))
            service = (
                _str(resource.get(semconv.SERVICE_NAME)),
                _str(resource.get(semconv.SERVICE_INSTANCE_ID)),
                _dumps(resource),
            )
            scopes = [
                ((scope_spans.get("scope") or {}).get("name") or None, span)
                for scope_spans in resource_spans.get("scopeSpans") or []
                for span in scope_spans.get("spans") or []
            ]
        except _SHAPE_ERRORS as e:
            if rejects.keeps_span(reason=f"OTLP JSON resource of an unexpected shape ({_sort(e)})"):
                rejects.add(
                    reason=f"OTLP JSON resource of an unexpected shape ({_why(e)}): its spans "
                    "are not stored; the other resources' are",
                    raw=_as_json(resource_spans),
                )
            rejects.unread_spans += 1  # at least one; how many cannot be read
            continue
        for scope, span in scopes:
            try:
                row = _span_row(span, scope, service)
            except _SHAPE_ERRORS as e:
                if rejects.keeps_span(reason=f"OTLP JSON span of an unexpected shape ({_sort(e)})"):
                    rejects.add(
                        reason=f"OTLP JSON span of an unexpected shape ({_why(e)}): it is not "
                        "stored; the other spans of the request are",
                        raw=_as_json(span),
                    )
                rejects.unread_spans += 1
                continue
            for name, value in zip(_ROW, row, strict=True):
                columns[name].append(value)
    return columns


def _span_row(span: dict[str, Any], scope: str | None, service: tuple[Any, ...]) -> tuple:
    """One span's values, in ``_ROW``'s order."""
    attributes = _key_values(span.get("attributes"))
    status = span.get("status") or {}
    links = span.get("links") or [{}]
    return (
        _id(span.get("traceId")),
        _id(span.get("spanId")),
        _id(span.get("parentSpanId")) or None,
        _text("name", span.get("name", "")),
        _text("scope name", scope),
        _int64("kind", span.get("kind", 0)),
        _time("startTimeUnixNano", span.get("startTimeUnixNano")),
        _time("endTimeUnixNano", span.get("endTimeUnixNano")),
        _int64("status code", status.get("code", 0)),
        _text("status message", status.get("message")) or None,
        _dumps(attributes),
        _events(span.get("events")),
        _links(span.get("links")),
        _id(links[0].get("traceId")),
        _id(links[0].get("spanId")),
        *(None if (v := attributes.get(key)) is None else str(v) for key in _PROMOTED),
        number_or_none(attributes.get(semconv.CHOREO_NAK_DELAY_MS)),
        *service,
    )


def _why(error: BaseException) -> str:
    if isinstance(error, KeyError):
        return f"a KeyValue (attribute) lacks {error}"
    if isinstance(error, RecursionError):
        return "values nested too deeply"
    return f"{type(error).__name__}: {error}"


def _sort(error: BaseException) -> str:
    """``_why`` without the values: what alike spans' rejects are counted under."""
    return _why(error) if isinstance(error, KeyError | RecursionError) else type(error).__name__


def _as_json(value: Any) -> str:
    try:
        return _dumps(value)
    except (TypeError, ValueError, RecursionError):
        return repr(value)[:4096]


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


def _text(what: str, value: Any) -> str | None:
    """A text field's value; raises ``TypeError`` (the span is refused alone) for
    another type: a number or a list there failed the whole request."""
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{what} is {type(value).__name__}, not text")


def _int64(what: str, value: Any) -> int:
    """An enum field's value; raises ``OverflowError`` (the span is refused alone)
    beyond int64: such a value failed the whole request."""
    number = int(value)
    if not -(2**63) <= number < 2**63:
        raise OverflowError(f"{what} {number} is beyond int64")
    return number


def _id(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _time(what: str, value: Any) -> int:
    """A span's start or end, in nanoseconds; raises ``ValueError`` (the span is refused
    alone) for one that is no whole number: read as out of range, ``"soon"`` was
    refused as "outside the years 2000-2100", which sent the user looking at clocks."""
    if value is None:  # proto3 JSON leaves a zero out: 1970, outside the years taken
        return _nanos(0)
    try:
        if isinstance(value, bool):
            raise TypeError
        int(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{what} {value!r:.40} is not a number: send nanoseconds since 1970, as an "
            "integer or a string of digits"
        ) from None
    return _nanos(value)


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
