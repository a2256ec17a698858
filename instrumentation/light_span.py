"""Light spans for the messaging spans: publish, receive, process, settle.

The SDK's ``Span`` validates every attribute it is given, takes a lock per
change and builds bounded containers: about 20 µs for a process span here,
against about 6 µs for this one, and an Agent makes four spans per event.
choreoscope builds these spans from values it knows are clean, so it keeps them
as plain values and hands the provider's processors a ``ReadableSpan`` when they
end. Processors still see ``on_start`` and ``on_end``; sampling follows the
provider's sampler. Values that user code sets on a current process span are
checked the way the SDK checks them (unsupported types are dropped with a
warning). Span limits are not applied to these spans.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import (
    Event,
    ReadableSpan,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from instrumentation.span_context import valid_span_context

log = logging.getLogger(__name__)

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
UNSET_STATUS = Status(StatusCode.UNSET)  # shared by every light span until one sets its own
_SCALARS = (str, bool, int, float)


def _valid_attribute(value: Any) -> bool:
    """What the SDK accepts: a scalar, or a sequence of one scalar type."""
    if isinstance(value, _SCALARS):
        return True
    if isinstance(value, (list, tuple)):
        kinds = {type(v) for v in value if v is not None}
        return len(kinds) <= 1 and all(issubclass(k, _SCALARS) for k in kinds)
    return False


_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_DEFAULT_SAMPLER = "ParentBased{root:AlwaysOnSampler"


def _links_to(linked: SpanContext | None) -> tuple[Link, ...]:
    return (Link(linked),) if linked is not None else ()


class LightSpanFactory:
    """Makes ``LightSpan``s for one SDK tracer provider."""

    def __init__(self, provider: TracerProvider, scope: InstrumentationScope) -> None:
        self._provider = provider
        self._new_trace_id = provider.id_generator.generate_trace_id
        self._new_span_id = provider.id_generator.generate_span_id
        self._sampler = provider.sampler
        self._parent_based_always_on = self._sampler.get_description().startswith(_DEFAULT_SAMPLER)
        self.resource = provider.resource
        self.scope = scope
        self._processors_seen: tuple[SpanProcessor, ...] | None = None
        self._notify_start = False
        self._end_targets: tuple[Callable[[ReadableSpan], None], ...] = ()

    def _refresh_processors(self) -> None:
        """Note the provider's processors (a tuple, replaced when one is added)."""
        active = self._provider._active_span_processor
        processors = active._span_processors
        self._processors_seen = processors
        self._notify_start = any(
            type(p).on_start is not SpanProcessor.on_start
            and not type(p).__module__.startswith("opentelemetry.sdk.trace")
            for p in processors
        )
        # the SDK's synchronous multi-processor only loops over its processors:
        # calling them directly saves a call per span
        self._end_targets = (
            tuple(p.on_end for p in processors)
            if type(active) is SynchronousMultiSpanProcessor
            else (active.on_end,)
        )

    @staticmethod
    def supports(provider: Any) -> bool:
        return isinstance(provider, TracerProvider)

    def on_start(self, span: LightSpan, parent: SpanContext | None) -> None:
        parent_context = (
            trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent else None
        )
        self._provider._active_span_processor.on_start(span, parent_context=parent_context)  # type: ignore[arg-type]

    def on_end(self, span: ReadableSpan) -> None:
        if self._provider._active_span_processor._span_processors is not self._processors_seen:
            self._refresh_processors()
        for on_end in self._end_targets:
            on_end(span)

    def start(
        self,
        name: str,
        *,
        kind: SpanKind,
        parent: SpanContext | None,
        attributes: dict[str, Any],
        linked: SpanContext | None = None,
        start_time: int,
    ) -> LightSpan:
        # a SpanContext is a tuple: [0] trace id, [3] flags, [4] state, [5] is_valid
        if parent is not None and parent[5]:
            trace_id = parent[0]
            trace_state = parent[4]
        else:
            parent = None
            trace_id = self._new_trace_id()
            trace_state = None
        if self._parent_based_always_on:
            sampled = parent is None or (parent[3] & _SAMPLED) != 0
        else:
            parent_context = (
                trace.set_span_in_context(trace.NonRecordingSpan(parent))
                if parent is not None
                else Context()
            )
            result = self._sampler.should_sample(
                parent_context, trace_id, name, kind, attributes, _links_to(linked)
            )
            sampled = result.decision == Decision.RECORD_AND_SAMPLE
        span = LightSpan(
            self,
            name,
            kind,
            trace_id,
            self._new_span_id(),
            trace_state,
            parent,
            attributes,
            linked,
            start_time,
            sampled,
        )
        if sampled:  # (inline: this runs for every span)
            if self._provider._active_span_processor._span_processors is not self._processors_seen:
                self._refresh_processors()
            if self._notify_start:
                self.on_start(span, parent)
        return span


class LightSpan(trace.Span, ReadableSpan):
    """A span recorded as plain values; when it ends it is its own ``ReadableSpan``
    (as the SDK's ``Span`` is), so processors get it without a copy."""

    # slots: no per-span __dict__ to build (the API's base classes have one, made
    # only if something sets another attribute)
    __slots__ = (
        "_attributes",
        "_end_time",
        "_ended",
        "_events",
        "_factory",
        "_instrumentation_info",
        "_instrumentation_scope",
        "_kind",
        "_linked",
        "_made_context",
        "_name",
        "_parent",
        "_resource",
        "_sampled",
        "_span_id",
        "_start_time",
        "_status",
        "_trace_id",
        "_trace_state",
    )

    def __init__(
        self,
        factory: LightSpanFactory,
        name: str,
        kind: SpanKind,
        trace_id: int,
        span_id: int,
        trace_state: TraceState | None,
        parent: SpanContext | None,
        attributes: dict[str, Any],
        linked: SpanContext | None,
        start_time: int,
        sampled: bool,
    ) -> None:
        # ReadableSpan's fields, set directly: its __init__ would build a Resource
        self._factory = factory
        self._name = name
        self._kind = kind
        # the ids, and the SpanContext only once someone asks for it: most of these
        # spans are only encoded (which reads the ids), and one object less per span
        # waiting in the exporter's queue is less work for the garbage collector
        self._trace_id = trace_id
        self._span_id = span_id
        self._trace_state = trace_state
        self._made_context: SpanContext | None = None
        self._parent = parent
        self._attributes = attributes
        # the one span a messaging span links to (its producer), as its Link only
        # when asked: one object less per delivery waiting in the exporter's queue
        self._linked = linked
        # most spans never get an event: no list (one less object for the GC) until one
        self._events: Sequence[Event] = ()
        self._start_time = start_time
        self._end_time: int | None = None
        self._status = UNSET_STATUS
        self._resource = factory.resource
        self._instrumentation_scope = factory.scope
        self._instrumentation_info = None
        self._sampled = sampled
        self._ended = False

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        self._end_time = end_time if end_time is not None else self._start_time
        if self._sampled:
            self._factory.on_end(self)

    @property
    def _links(self) -> tuple[Link, ...]:  # what ReadableSpan.links reads
        return _links_to(self._linked)

    @property
    def _context(self) -> SpanContext:  # what ReadableSpan.context reads
        context = self._made_context
        if context is None:
            context = self._made_context = valid_span_context(
                self._trace_id,
                self._span_id,
                False,
                _SAMPLED if self._sampled else _NOT_SAMPLED,
                self._trace_state,
            )
        return context

    def get_span_context(self) -> SpanContext:
        return self._context

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def set_attribute(self, key: str, value: Any) -> None:
        if self._ended:
            return
        if _valid_attribute(value):
            self._attributes[key] = tuple(value) if isinstance(value, list) else value
        else:
            log.warning("attribute %r dropped: %s is not a valid attribute type", key, type(value))

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None
    ) -> None:
        if not self._ended:
            if not self._events:
                self._events = []
            self._events.append(Event(name, dict(attributes or {}), timestamp))  # type: ignore[attr-defined]

    def update_name(self, name: str) -> None:
        if not self._ended:
            self._name = name

    def is_recording(self) -> bool:
        return self._sampled and not self._ended

    def set_status(self, status: Any, description: str | None = None) -> None:
        if self._ended:
            return
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
