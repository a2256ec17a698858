"""Trace context in NATS headers: inject on publish, extract on delivery.

Headers are written lowercase where W3C defines them and read case-insensitively
(Go carriers write ``Traceparent``). ``Nats-Trace-*`` headers belong to the
server's own message tracing and are ignored. A missing or garbled
``traceparent`` gives an empty context and ``broken=True``: the consumer starts a
new trace and marks it, while ``Choreo-Workflow-Id`` keeps the business
transaction together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter, Setter, TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

from instrumentation import wire
from instrumentation.span_context import valid_span_context

_IGNORED_PREFIX = wire.IGNORED_HEADER_PREFIX.lower()
_TRACECONTEXT = TraceContextTextMapPropagator()
_BAGGAGE = W3CBaggagePropagator()
_w3c_only_cache: tuple[TextMapPropagator | None, bool] = (None, False)
_WORKFLOW_ID = wire.WORKFLOW_ID.lower()
# the header names as this module writes them (W3C's are lowercase already)
_AS_WRITTEN = frozenset(
    {wire.TRACEPARENT, wire.TRACESTATE, wire.BAGGAGE, wire.MSG_ID, wire.WORKFLOW_ID}
)
_MSG_ID = wire.MSG_ID.lower()
# what this module writes: version 00, nothing after the flags; anything else
# goes through the W3C propagator, which accepts (or refuses) it as before
_PLAIN_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_FLAGS = {f"{flags:02x}": TraceFlags(flags) for flags in range(256)}
_FLAGS_HEX = {flags: text for text, flags in _FLAGS.items()}
_EMPTY_CONTEXT = Context()  # contexts are never changed in place: one is enough


class HeadersSetter(Setter[dict[str, str]]):
    """Writes propagation fields into a NATS headers dict."""

    def set(self, carrier: dict[str, str], key: str, value: str) -> None:
        carrier[key] = value


class HeadersGetter(Getter[Mapping[str, str]]):
    """Reads propagation fields from NATS headers, whatever their case."""

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            value = lowercase_headers(carrier).get(key.lower())
        return [value] if value is not None else None

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier.keys())


HEADERS_SETTER = HeadersSetter()
HEADERS_GETTER = HeadersGetter()


def lowercase_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The headers keyed lowercase, without the server's ``Nats-Trace-*`` headers."""
    lowered: dict[str, str] = {}
    if headers:
        for key, value in headers.items():
            key = key.lower()
            if not key.startswith(_IGNORED_PREFIX):
                lowered[key] = value
    return lowered


def _w3c_only() -> bool:
    """Whether the global propagators are W3C trace context and baggage, nothing else.

    Then the hot path writes and reads the two headers itself, which is what those
    propagators do, without going through the generic carrier machinery.
    """
    global _w3c_only_cache
    textmap = propagate.get_global_textmap()
    cached, answer = _w3c_only_cache
    if textmap is cached:
        return answer
    inner = (
        getattr(textmap, "_propagators", None) if isinstance(textmap, CompositePropagator) else None
    )
    answer = inner is not None and sorted(type(p).__name__ for p in inner) == [
        "TraceContextTextMapPropagator",
        "W3CBaggagePropagator",
    ]
    _w3c_only_cache = (textmap, answer)
    return answer


def inject_context(headers: dict[str, str], context: Context | None = None) -> dict[str, str]:
    """Add ``traceparent``/``tracestate``/``baggage`` for ``context`` (default: current)."""
    if not _w3c_only():
        propagate.inject(headers, context=context, setter=HEADERS_SETTER)
        return headers
    _write_trace_context(headers, trace.get_current_span(context).get_span_context())
    if baggage.get_all(context):
        _BAGGAGE.inject(headers, context, setter=HEADERS_SETTER)
    return headers


def inject_span(headers: dict[str, str], span: Span) -> dict[str, str]:
    """``inject_context`` for ``span`` in the current context, without building that
    context when the propagators are W3C's (a publish does this for every message)."""
    if not _w3c_only():
        return inject_context(headers, trace.set_span_in_context(span))
    _write_trace_context(headers, span.get_span_context())
    # an empty current context holds no baggage: skip the baggage API's four calls
    if otel_context.get_current() and baggage.get_all():
        _BAGGAGE.inject(headers, setter=HEADERS_SETTER)
    return headers


def _write_trace_context(headers: dict[str, str], span_context: SpanContext) -> None:
    # a SpanContext is a tuple: [0] trace id, [1] span id, [3] flags, [4] state, [5] valid
    if span_context[5]:
        trace_id = span_context[0].to_bytes(16, "big").hex()  # faster than format()
        span_id = span_context[1].to_bytes(8, "big").hex()
        headers[wire.TRACEPARENT] = f"00-{trace_id}-{span_id}-{_FLAGS_HEX[span_context[3]]}"
        state = span_context[4]
        if state is not DEFAULT_TRACE_STATE and state:
            headers[wire.TRACESTATE] = state.to_header()


def _plain_producer(lowered: Mapping[str, str]) -> SpanContext | None:
    """The producer's span context from a ``traceparent`` as this module writes it,
    with no ``tracestate``: what the W3C propagator would make of it, made directly."""
    value = lowered.get(wire.TRACEPARENT)
    if value is None or wire.TRACESTATE in lowered or _PLAIN_TRACEPARENT.fullmatch(value) is None:
        return None
    trace_id = int(value[3:35], 16)
    span_id = int(value[36:52], 16)
    if not trace_id or not span_id:
        return None
    return valid_span_context(trace_id, span_id, True, _FLAGS[value[53:55]], None)


class Delivered(NamedTuple):
    """What a delivered message's headers say about where it came from (a named
    tuple: made for every message, and three times cheaper than a frozen dataclass)."""

    base_context: Context  # baggage (and other propagators' fields), without the producer
    producer: SpanContext | None  # the remote publish span, None when broken
    workflow_id: str | None
    message_id: str | None
    broken: bool

    @property
    def context(self) -> Context:
        """The extracted context: ``base_context`` with the producer's span current
        (built on demand: a consumer that starts its own span never needs it)."""
        if self.producer is None:
            return self.base_context
        return trace.set_span_in_context(NonRecordingSpan(self.producer), self.base_context)


def extract_delivered(headers: Mapping[str, str] | None) -> Delivered:
    """Read trace context, workflow id and message id from a delivered message."""
    if headers and _AS_WRITTEN.issuperset(headers):
        # only headers spelled as publishers here write them: no need to lower them
        lowered: Mapping[str, str] = headers
        workflow_id, message_id = headers.get(wire.WORKFLOW_ID), headers.get(wire.MSG_ID)
    else:
        lowered = lowercase_headers(headers)
        workflow_id, message_id = lowered.get(_WORKFLOW_ID), lowered.get(_MSG_ID)
    if _w3c_only():
        producer = _plain_producer(lowered)
        if producer is not None:  # the usual case: valid and remote by construction
            if wire.BAGGAGE not in lowered:
                return Delivered(
                    _EMPTY_CONTEXT, producer, workflow_id or None, message_id or None, False
                )
            context = _BAGGAGE.extract(lowered, _EMPTY_CONTEXT)
        else:
            context = _TRACECONTEXT.extract(lowered)
            producer = trace.get_current_span(context).get_span_context()
            if wire.BAGGAGE in lowered:
                context = _BAGGAGE.extract(lowered, context)
    else:
        context = propagate.extract(lowered, getter=HEADERS_GETTER)
        producer = trace.get_current_span(context).get_span_context()
    valid = producer.is_valid and producer.is_remote
    return Delivered(
        base_context=context,  # keeps baggage even when the trace context is broken
        producer=producer if valid else None,
        workflow_id=workflow_id or None,
        message_id=message_id or None,
        broken=not valid,
    )


def header_value(headers: Mapping[str, str] | None, name: str) -> str | None:
    """The value of header ``name`` in ``headers``, whatever its case."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)
