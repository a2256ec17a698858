"""Light spans for the short, internal messaging spans: publish, receive, settle.

The SDK's ``Span`` validates every attribute value, takes locks and calls every
processor's ``on_start``: about 13 µs a span here, and an Agent makes four per
event. These spans are built by choreoscope itself from values it knows are clean,
never exposed to user code, and end within microseconds (or around one publish),
so they are collected as plain attributes and handed to the provider's processors
as a ``ReadableSpan`` when they end. Sampling follows the provider's sampler.
Processors see ``on_end`` for them but not ``on_start``. User-facing spans (a
handler's process span) stay SDK spans.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_DEFAULT_SAMPLER = "ParentBased{root:AlwaysOnSampler"


class LightSpanFactory:
    """Makes ``LightSpan``s for one SDK tracer provider."""

    def __init__(self, provider: TracerProvider, scope: InstrumentationScope) -> None:
        self._provider = provider
        self._ids = provider.id_generator
        self._sampler = provider.sampler
        self._parent_based_always_on = self._sampler.get_description().startswith(_DEFAULT_SAMPLER)
        self.resource = provider.resource
        self.scope = scope

    @staticmethod
    def supports(provider: Any) -> bool:
        return isinstance(provider, TracerProvider)

    def on_end(self, span: ReadableSpan) -> None:
        self._provider._active_span_processor.on_end(span)

    def start(
        self,
        name: str,
        *,
        kind: SpanKind,
        parent: SpanContext | None,
        attributes: dict[str, Any],
        links: Sequence[Link] = (),
        start_time: int,
    ) -> LightSpan:
        if parent is not None and parent.is_valid:
            trace_id = parent.trace_id
            trace_state = parent.trace_state
        else:
            parent = None
            trace_id = self._ids.generate_trace_id()
            trace_state = None
        if self._parent_based_always_on:
            sampled = parent.trace_flags.sampled if parent is not None else True
        else:
            parent_context = (
                trace.set_span_in_context(trace.NonRecordingSpan(parent))
                if parent is not None
                else Context()
            )
            result = self._sampler.should_sample(
                parent_context, trace_id, name, kind, attributes, links
            )
            sampled = result.decision == Decision.RECORD_AND_SAMPLE
        context = SpanContext(
            trace_id,
            self._ids.generate_span_id(),
            is_remote=False,
            trace_flags=_SAMPLED if sampled else _NOT_SAMPLED,
            trace_state=trace_state,
        )
        return LightSpan(self, name, kind, context, parent, attributes, links, start_time, sampled)


class LightSpan(trace.Span):
    """A span recorded as plain values and exported when it ends."""

    __slots__ = (
        "_attributes",
        "_context",
        "_ended",
        "_events",
        "_factory",
        "_kind",
        "_links",
        "_name",
        "_parent",
        "_sampled",
        "_start",
        "_status",
    )

    def __init__(
        self,
        factory: LightSpanFactory,
        name: str,
        kind: SpanKind,
        context: SpanContext,
        parent: SpanContext | None,
        attributes: dict[str, Any],
        links: Sequence[Link],
        start_time: int,
        sampled: bool,
    ) -> None:
        self._factory = factory
        self._name = name
        self._kind = kind
        self._context = context
        self._parent = parent
        self._attributes = attributes
        self._links = links
        self._start = start_time
        self._sampled = sampled
        self._events: list[Event] = []
        self._status = Status(StatusCode.UNSET)
        self._ended = False

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        if not self._sampled:
            return
        factory = self._factory
        factory.on_end(
            ReadableSpan(
                name=self._name,
                context=self._context,
                parent=self._parent,
                resource=factory.resource,
                attributes=self._attributes,
                events=self._events,
                links=self._links,
                kind=self._kind,
                status=self._status,
                start_time=self._start,
                end_time=end_time if end_time is not None else self._start,
                instrumentation_scope=factory.scope,
            )
        )

    def get_span_context(self) -> SpanContext:
        return self._context

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self._attributes.update(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        self._attributes[key] = value

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None
    ) -> None:
        self._events.append(Event(name, dict(attributes or {}), timestamp))

    def update_name(self, name: str) -> None:
        self._name = name

    def is_recording(self) -> bool:
        return self._sampled and not self._ended

    def set_status(self, status: Any, description: str | None = None) -> None:
        if isinstance(status, Status):
            self._status = status
        else:
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        event_attributes = {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            **dict(attributes or {}),
        }
        self.add_event("exception", event_attributes, timestamp)
