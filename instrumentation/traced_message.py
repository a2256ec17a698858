"""A delivered NATS message that knows its trace: processing span and settle spans.

The current workflow id travels in a context variable while a message is being
processed, so whatever the handler publishes stays in the same workflow.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import AsyncIterator, Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind

from instrumentation import semconv
from instrumentation.messaging_spans import MessagingSpans, jetstream_attributes
from instrumentation.propagation import Delivered, extract_delivered, inject_context

current_workflow_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "choreoscope_workflow_id", default=None
)


class TracedMsg:
    """A delivered message: the nats-py ``Msg`` plus its trace, workflow and attempt.

    ``ack``/``nak``/``term``/``in_progress`` record ``settle`` spans; ``processing()``
    wraps the work on the message in a ``process`` span (callbacks get one already).
    """

    def __init__(
        self,
        msg: Any,
        *,
        spans: MessagingSpans,
        consumer_group: str | None = None,
        delivered: Delivered | None = None,
    ) -> None:
        self.msg = msg
        self.delivered = delivered or extract_delivered(msg.headers)
        self.consumer_group = consumer_group or None
        self._spans = spans
        self._process_span: Span | None = None
        self.nats_attributes = jetstream_attributes(msg)

    # --- the nats-py Msg, read through ------------------------------------------
    @property
    def data(self) -> bytes:
        return self.msg.data

    @property
    def subject(self) -> str:
        return self.msg.subject

    @property
    def reply(self) -> str:
        return self.msg.reply

    @property
    def headers(self) -> dict[str, str] | None:
        return self.msg.headers

    @property
    def metadata(self) -> Any:
        return self.msg.metadata

    # --- what the trace says --------------------------------------------------------
    @property
    def message_id(self) -> str | None:
        return self.delivered.message_id

    @property
    def workflow_id(self) -> str | None:
        if self.delivered.workflow_id:
            return self.delivered.workflow_id
        if self.delivered.producer is not None:
            return f"{self.delivered.producer.trace_id:032x}"
        if self._process_span is not None:
            return f"{self._process_span.get_span_context().trace_id:032x}"
        return None

    @property
    def attempt(self) -> int:
        """The JetStream delivery count (1 for the first delivery and for core NATS)."""
        return int(self.nats_attributes.get(semconv.NATS_DELIVERY_COUNT, 1))

    @property
    def context_broken(self) -> bool:
        return self.delivered.broken

    @property
    def context(self) -> Context:
        """The process span's context while processing, else the producer's."""
        if self._process_span is not None:
            return trace.set_span_in_context(self._process_span, self.delivered.base_context)
        return self.delivered.context

    # --- spans ---------------------------------------------------------------------------
    def record_receive(self, *, kind: SpanKind = SpanKind.CLIENT) -> None:
        workflow_id = self._spans.receive(
            self.subject,
            self.delivered,
            consumer_group=self.consumer_group,
            extra=self.nats_attributes,
            kind=kind,
        )
        if not self.delivered.workflow_id:
            # a broken context: the receive span started a new workflow, which the
            # process span and what the handler publishes continue
            self.delivered = self.delivered._replace(workflow_id=workflow_id)

    @contextlib.contextmanager
    def processing(self, *, kind: SpanKind = SpanKind.CONSUMER) -> Iterator[Span]:
        """A ``process`` span around the work on this message, current while it runs."""
        span = self._spans.start_process(
            self.subject,
            self.delivered,
            consumer_group=self.consumer_group,
            extra=self.nats_attributes,
            kind=kind,
        )
        self._process_span = span
        token = otel_context.attach(trace.set_span_in_context(span, self.delivered.base_context))
        wf_token = current_workflow_id.set(self.workflow_id)
        try:
            yield span
        except BaseException as exc:
            self._spans.end_with_error(span, exc)
            raise
        else:
            self._spans.end(span)
        finally:
            current_workflow_id.reset(wf_token)
            otel_context.detach(token)

    def _settle_parent(self) -> Context:
        return self.context

    async def _settle(
        self, operation: str, action: Any, *, nak_delay_s: float | None = None, **kwargs: Any
    ) -> None:
        error = None
        try:
            await action(**kwargs)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._spans.settle(
                operation,
                self.subject,
                parent=self._settle_parent(),
                message_id=self.message_id,
                workflow_id=self.workflow_id,
                consumer_group=self.consumer_group,
                extra=self.nats_attributes,
                error=error,
                nak_delay_s=nak_delay_s,
            )

    async def ack(self) -> None:
        await self._settle("ack", self.msg.ack)

    async def ack_sync(self, timeout: float = 1.0) -> None:
        await self._settle("ack", self.msg.ack_sync, timeout=timeout)

    async def nak(self, delay: float | None = None) -> None:
        await self._settle("nak", self.msg.nak, delay=delay, nak_delay_s=delay)

    async def term(self) -> None:
        await self._settle("term", self.msg.term)

    async def in_progress(self) -> None:
        await self._settle("in_progress", self.msg.in_progress)

    async def respond(self, data: bytes, *, headers: dict[str, str] | None = None) -> None:
        """Reply to a request, carrying this message's trace context."""
        out = dict(headers or {})
        inject_context(out, self.context)
        await self.msg._client.publish(self.msg.reply, data, headers=out)


class TracedSubscription:
    """A subscription; iterated, its messages arrive as ``TracedMsg`` with a receive span each."""

    def __init__(self, sub: Any, *, spans: MessagingSpans, consumer_group: str | None) -> None:
        self.sub = sub
        self._spans = spans
        self._group = consumer_group

    def _wrap(self, msg: Any) -> TracedMsg:
        traced = TracedMsg(msg, spans=self._spans, consumer_group=self._group)
        traced.record_receive(kind=SpanKind.CONSUMER)
        return traced

    @property
    async def messages(self) -> AsyncIterator[TracedMsg]:
        async for msg in self.sub.messages:
            yield self._wrap(msg)

    async def next_msg(self, timeout: float = 1.0) -> TracedMsg:
        return self._wrap(await self.sub.next_msg(timeout=timeout))

    async def unsubscribe(self, limit: int = 0) -> None:
        await self.sub.unsubscribe(limit)

    async def drain(self) -> None:
        await self.sub.drain()
