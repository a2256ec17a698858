"""The spans of a message's life, per the OpenTelemetry messaging conventions.

publish (PRODUCER) → receive (CLIENT, ended on arrival) → process (CONSUMER, or
SERVER for a request) → settle (CLIENT: ack, nak, term, in_progress).
A process span is the child of the producer's publish span and links to it;
with ``links_only`` (batch consumers, handlers inside another ambient span) it
only links. Every span starts and ends on the telemetry handle's clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from instrumentation import semconv, wire
from instrumentation.ids import new_id
from instrumentation.light_span import LightSpanFactory
from instrumentation.propagation import Delivered, inject_span
from instrumentation.telemetry import INSTRUMENTATION_SCOPE, INSTRUMENTATION_VERSION, Telemetry

_NATS = {semconv.MESSAGING_SYSTEM: semconv.MESSAGING_SYSTEM_NATS}
_WRITTEN_HEADERS = {
    h.lower() for h in (wire.TRACEPARENT, wire.TRACESTATE, wire.MSG_ID, wire.WORKFLOW_ID)
}


def jetstream_attributes(msg: Any) -> dict[str, Any]:
    """``messaging.nats.*`` from a JetStream message's ack subject; {} for core NATS.

    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>``,
    or with ``<domain>.<account hash>`` after ``$JS.ACK`` (and a token at the end).
    Read directly: nats-py's ``metadata`` builds dataclasses we do not need.
    """
    reply = getattr(msg, "reply", "") or ""
    if not reply.startswith("$JS.ACK."):
        return {}
    tokens = reply.split(".")
    try:
        if len(tokens) == 9:
            stream, delivered, stream_seq = tokens[2], tokens[4], tokens[5]
        elif len(tokens) >= 11:
            stream, delivered, stream_seq = tokens[4], tokens[6], tokens[7]
        else:
            return {}
        return {
            semconv.NATS_STREAM: stream,
            semconv.NATS_STREAM_SEQUENCE: int(stream_seq),
            semconv.NATS_DELIVERY_COUNT: int(delivered),
        }
    except ValueError:
        return {}


class MessagingSpans:
    """Builds the messaging spans of one service."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self._tracer = telemetry.tracer
        self._clock = telemetry.clock
        provider = telemetry.tracer_provider
        self._light = (
            LightSpanFactory(
                provider,  # type: ignore[arg-type]
                InstrumentationScope(INSTRUMENTATION_SCOPE, INSTRUMENTATION_VERSION),
            )
            if LightSpanFactory.supports(provider)
            else None
        )

    def start_publish(
        self,
        subject: str,
        *,
        message_id: str,
        workflow_id: str | None,
        body_size: int,
        context: Context | None = None,
        operation_name: str = "publish",
        kind: SpanKind = SpanKind.PRODUCER,
    ) -> Span:
        attributes = {
            **_NATS,
            semconv.MESSAGING_DESTINATION_NAME: subject,
            semconv.MESSAGING_OPERATION_TYPE: semconv.OP_SEND,
            semconv.MESSAGING_OPERATION_NAME: operation_name,
            semconv.MESSAGING_MESSAGE_ID: message_id,
            semconv.MESSAGING_BODY_SIZE: body_size,
        }
        if workflow_id:
            attributes[semconv.CHOREO_WORKFLOW_ID] = workflow_id
        name = semconv.span_name(operation_name, subject)
        if self._light is not None:
            return self._light.start(
                name,
                kind=kind,
                # an empty context (a new workflow) has no parent: no need to look
                parent=(
                    trace.get_current_span(context).get_span_context()
                    if context is None or context
                    else None
                ),
                attributes=attributes,
                start_time=self._clock(),
            )
        return self._tracer.start_span(
            name, context=context, kind=kind, attributes=attributes, start_time=self._clock()
        )

    def publish_headers(
        self,
        span: Span,
        *,
        message_id: str,
        workflow_id: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The user's headers plus trace context, message id and workflow id (ours
        replace any the user's headers carry, whatever their case)."""
        out = (
            {k: v for k, v in headers.items() if k.lower() not in _WRITTEN_HEADERS}
            if headers
            else {}
        )
        inject_span(out, span)
        out[wire.MSG_ID] = message_id
        if workflow_id:
            out[wire.WORKFLOW_ID] = workflow_id
        return out

    def _consumer_attributes(
        self,
        subject: str,
        delivered: Delivered,
        operation_type: str,
        operation_name: str,
        consumer_group: str | None,
        extra: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        attributes = {
            **_NATS,
            semconv.MESSAGING_DESTINATION_NAME: subject,
            semconv.MESSAGING_OPERATION_TYPE: operation_type,
            semconv.MESSAGING_OPERATION_NAME: operation_name,
        }
        if delivered.message_id:
            attributes[semconv.MESSAGING_MESSAGE_ID] = delivered.message_id
        if consumer_group:
            attributes[semconv.MESSAGING_CONSUMER_GROUP] = consumer_group
        workflow_id = delivered.workflow_id or (
            f"{delivered.producer.trace_id:032x}" if delivered.producer else None
        )
        if workflow_id:
            attributes[semconv.CHOREO_WORKFLOW_ID] = workflow_id
        if delivered.broken:
            attributes[semconv.CHOREO_CONTEXT_BROKEN] = True
        if extra:
            attributes.update(extra)
        return attributes

    def _start_consumer_span(
        self,
        name: str,
        kind: SpanKind,
        delivered: Delivered,
        attributes: dict[str, Any],
        links_only: bool,
    ) -> Span:
        if self._light is not None:
            span = self._light.start(
                name,
                kind=kind,
                parent=(
                    trace.get_current_span().get_span_context()
                    if links_only
                    else delivered.producer
                ),
                attributes=attributes,
                linked=delivered.producer,
                start_time=self._clock(),
            )
            if semconv.CHOREO_WORKFLOW_ID not in attributes:
                trace_id = span.get_span_context().trace_id
                attributes[semconv.CHOREO_WORKFLOW_ID] = f"{trace_id:032x}"
            return span
        links = [Link(delivered.producer)] if delivered.producer is not None else None
        parent = None if links_only else delivered.context
        if delivered.broken and not links_only:
            parent = Context()  # a new trace, marked broken
        span = self._tracer.start_span(
            name,
            context=parent,
            kind=kind,
            attributes=attributes,
            links=links,
            start_time=self._clock(),
        )
        if semconv.CHOREO_WORKFLOW_ID not in attributes:
            span.set_attribute(
                semconv.CHOREO_WORKFLOW_ID, f"{span.get_span_context().trace_id:032x}"
            )
        return span

    def receive(
        self,
        subject: str,
        delivered: Delivered,
        *,
        consumer_group: str | None = None,
        extra: Mapping[str, Any] | None = None,
        kind: SpanKind = SpanKind.CLIENT,
    ) -> str:
        """A ``receive`` span, ended at once: the message arrived (even if its handler hangs).
        Returns the workflow id it carries (its own new trace's when the context is broken
        and no header names one: the message's process span must carry the same)."""
        attributes = self._consumer_attributes(
            subject, delivered, semconv.OP_RECEIVE, "receive", consumer_group, extra
        )
        name = semconv.span_name("receive", subject)
        if self._light is None:
            span = self._start_consumer_span(name, kind, delivered, attributes, False)
            span.end(end_time=self._clock())
            return attributes.get(semconv.CHOREO_WORKFLOW_ID) or _new_workflow_id(span)
        producer = delivered.producer
        span = self._light.start(
            name,
            kind=kind,
            parent=producer,
            attributes=attributes,
            linked=producer,
            start_time=self._clock(),
        )
        if semconv.CHOREO_WORKFLOW_ID not in attributes:
            attributes[semconv.CHOREO_WORKFLOW_ID] = f"{span.get_span_context().trace_id:032x}"
        span.end(self._clock())
        return attributes[semconv.CHOREO_WORKFLOW_ID]

    def start_process(
        self,
        subject: str,
        delivered: Delivered,
        *,
        consumer_group: str | None = None,
        extra: Mapping[str, Any] | None = None,
        kind: SpanKind = SpanKind.CONSUMER,
        links_only: bool = False,
    ) -> Span:
        attributes = self._consumer_attributes(
            subject, delivered, semconv.OP_PROCESS, "process", consumer_group, extra
        )
        return self._start_consumer_span(
            semconv.span_name("process", subject), kind, delivered, attributes, links_only
        )

    def arrive(
        self,
        subject: str,
        delivered: Delivered,
        *,
        consumer_group: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[Span, str]:
        """``receive`` then ``start_process``, as a handler's delivery needs them: the
        two spans share their attributes, link and workflow id, so they are built once.
        Returns the process span and the workflow id both carry."""
        producer = delivered.producer
        if self._light is None or producer is None:
            workflow_id = self.receive(
                subject, delivered, consumer_group=consumer_group, extra=extra
            )
            if not delivered.workflow_id:
                # no producer to continue (a broken context) and no header naming the
                # workflow: the process span joins the one the receive span started
                delivered = delivered._replace(workflow_id=workflow_id)
            span = self.start_process(
                subject, delivered, consumer_group=consumer_group, extra=extra
            )
            return span, workflow_id
        attributes = self._consumer_attributes(
            subject, delivered, semconv.OP_RECEIVE, "receive", consumer_group, extra
        )
        process_attributes = attributes.copy()
        process_attributes[semconv.MESSAGING_OPERATION_TYPE] = semconv.OP_PROCESS
        process_attributes[semconv.MESSAGING_OPERATION_NAME] = "process"
        start = self._light.start
        receive = start(
            semconv.span_name("receive", subject),
            kind=SpanKind.CLIENT,
            parent=producer,
            attributes=attributes,
            linked=producer,
            start_time=self._clock(),
        )
        receive.end(self._clock())
        span = start(
            semconv.span_name("process", subject),
            kind=SpanKind.CONSUMER,
            parent=producer,
            attributes=process_attributes,
            linked=producer,
            start_time=self._clock(),
        )
        return span, process_attributes[semconv.CHOREO_WORKFLOW_ID]

    def settle(
        self,
        operation_name: str,
        subject: str,
        *,
        parent: Context | None,
        message_id: str | None = None,
        workflow_id: str | None = None,
        consumer_group: str | None = None,
        extra: Mapping[str, Any] | None = None,
        error: str | None = None,
        nak_delay_s: float | None = None,
    ) -> None:
        """An ended ``settle`` span: ``ack``, ``nak``, ``term`` or ``in_progress``, with
        the message and workflow ids of the message it settles, as every span of ours.
        ``nak_delay_s``: the delay a nak asked before the redelivery (the correlator
        waits that long for it before it calls the attempt failed)."""
        attributes: dict[str, Any] = {
            **_NATS,
            semconv.MESSAGING_DESTINATION_NAME: subject,
            semconv.MESSAGING_OPERATION_TYPE: semconv.OP_SETTLE,
            semconv.MESSAGING_OPERATION_NAME: operation_name,
        }
        if message_id:
            attributes[semconv.MESSAGING_MESSAGE_ID] = message_id
        if workflow_id:
            attributes[semconv.CHOREO_WORKFLOW_ID] = workflow_id
        if consumer_group:
            attributes[semconv.MESSAGING_CONSUMER_GROUP] = consumer_group
        if extra:
            attributes.update(extra)
        if nak_delay_s is not None:
            attributes[semconv.CHOREO_NAK_DELAY_MS] = float(nak_delay_s) * 1000.0
        name = semconv.span_name(operation_name, subject)
        if self._light is not None:
            span: Span = self._light.start(
                name,
                kind=SpanKind.CLIENT,
                parent=trace.get_current_span(parent).get_span_context(),
                attributes=attributes,
                start_time=self._clock(),
            )
        else:
            span = self._tracer.start_span(
                name,
                context=parent,
                kind=SpanKind.CLIENT,
                attributes=attributes,
                start_time=self._clock(),
            )
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=self._clock())

    def end_with_error(
        self, span: Span, exc: BaseException, *, description: str | None = None
    ) -> None:
        """Record ``exc`` on ``span``, mark it failed and end it."""
        span.record_exception(exc, timestamp=self._clock())
        span.set_status(Status(StatusCode.ERROR, description or f"{type(exc).__name__}: {exc}"))
        span.end(end_time=self._clock())

    def end(self, span: Span) -> None:
        span.end(end_time=self._clock())


def _new_workflow_id(span: Span) -> str:
    """The workflow a message without one starts: its new trace's id, or a random id
    when the tracer makes no trace (OpenTelemetry not configured: a no-op tracer's
    spans all carry trace id 0, which would make every such message one workflow)."""
    trace_id = span.get_span_context().trace_id
    return f"{trace_id:032x}" if trace_id else new_id()
