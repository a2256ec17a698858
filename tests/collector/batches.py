"""Span batches built by hand from DESIGN.md's formats: columnar msgpack and OTLP.

Used by the collector tests and the collector benchmark, so both speak the
exact wire formats without depending on the exporter's code.
"""

from __future__ import annotations

import json
import time
from typing import Any

import msgpack
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from instrumentation import semconv, wire


def span_ids(start: int, n: int, *, trace_group: int = 8) -> list[tuple[str, str]]:
    """Deterministic (trace_id, span_id) pairs: ``trace_group`` spans per trace."""
    return [(f"{(i // trace_group) + 1:032x}", f"{i + 1:016x}") for i in range(start, start + n)]


def _attributes(i: int, service: str) -> dict[str, Any]:
    return {
        semconv.MESSAGING_SYSTEM: "nats",
        semconv.MESSAGING_DESTINATION_NAME: "recruit.cv.parsed",
        semconv.MESSAGING_OPERATION_TYPE: "process",
        semconv.MESSAGING_OPERATION_NAME: "process",
        semconv.MESSAGING_MESSAGE_ID: f"msg-{i}",
        semconv.MESSAGING_CONSUMER_GROUP: service,
        semconv.CHOREO_WORKFLOW_ID: f"wf-{i // 8}",
        semconv.NATS_DELIVERY_COUNT: 1,
    }


def columnar_batch(
    start: int, n: int, *, service: str = "scorer", now_ns: int | None = None, **overrides: Any
) -> bytes:
    """A columnar msgpack batch of ``n`` spans; ``overrides`` replace whole columns."""
    now_ns = now_ns or time.time_ns()
    ids = span_ids(start, n)
    attributes = [_attributes(start + k, service) for k in range(n)]
    batch: dict[str, Any] = {
        "v": wire.COLUMNAR_VERSION,
        "n": n,
        "resource": {semconv.SERVICE_NAME: service, semconv.SERVICE_INSTANCE_ID: "i-1"},
        "trace_id": [t for t, _ in ids],
        "span_id": [s for _, s in ids],
        "parent_span_id": [None] * n,
        "name": ["process recruit.cv.parsed"] * n,
        "scope": ["choreoscope"] * n,
        "kind": [5] * n,
        "start_ns": [now_ns] * n,
        "end_ns": [now_ns + 2_000_000] * n,
        "status_code": [0] * n,
        "status_message": [None] * n,
        "attributes": [json.dumps(a) for a in attributes],
        "events": [None] * n,
        "links": [json.dumps([{"trace_id": "f" * 32, "span_id": "e" * 16, "attributes": {}}])] * n,
        "workflow_id": [a[semconv.CHOREO_WORKFLOW_ID] for a in attributes],
        "subject": [a[semconv.MESSAGING_DESTINATION_NAME] for a in attributes],
        "message_id": [a[semconv.MESSAGING_MESSAGE_ID] for a in attributes],
        "operation": ["process"] * n,
        "consumer_group": [service] * n,
    }
    batch.update(overrides)
    return msgpack.packb(batch)


def otlp_request(
    start: int, n: int, *, service: str = "scorer", now_ns: int | None = None
) -> ExportTraceServiceRequest:
    """An OTLP ExportTraceServiceRequest of ``n`` spans, as a stock SDK sends."""
    now_ns = now_ns or time.time_ns()
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    for key, value in ((semconv.SERVICE_NAME, service), (semconv.SERVICE_INSTANCE_ID, "i-1")):
        kv = resource_spans.resource.attributes.add()
        kv.key, kv.value.string_value = key, value
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "stock-sdk"
    for k, (trace_id, span_id) in enumerate(span_ids(start, n)):
        span = scope_spans.spans.add()
        span.trace_id = bytes.fromhex(trace_id)
        span.span_id = bytes.fromhex(span_id)
        span.name = "process recruit.cv.parsed"
        span.kind = 5
        span.start_time_unix_nano = now_ns
        span.end_time_unix_nano = now_ns + 2_000_000
        for key, value in _attributes(start + k, service).items():
            kv = span.attributes.add()
            kv.key = key
            if isinstance(value, int):
                kv.value.int_value = value
            else:
                kv.value.string_value = value
    return request


def otlp_json_request(start: int, n: int, *, service: str = "scorer") -> dict[str, Any]:
    """The OTLP JSON encoding of ``otlp_request`` (hex ids, lowerCamelCase keys)."""
    now_ns = time.time_ns()
    spans = []
    for k, (trace_id, span_id) in enumerate(span_ids(start, n)):
        spans.append(
            {
                "traceId": trace_id,
                "spanId": span_id,
                "name": "process recruit.cv.parsed",
                "kind": 5,
                "startTimeUnixNano": str(now_ns),
                "endTimeUnixNano": str(now_ns + 2_000_000),
                "attributes": [
                    {
                        "key": key,
                        "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v},
                    }
                    for key, v in _attributes(start + k, service).items()
                ],
            }
        )
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": service}},
                        {"key": "service.instance.id", "value": {"stringValue": "i-1"}},
                    ]
                },
                "scopeSpans": [{"scope": {"name": "stock-sdk"}, "spans": spans}],
            }
        ]
    }
