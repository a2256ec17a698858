"""One delivered message through one Agent handler: spans, outcome, settlement.

success → ack. A handler exception → error span, then nak with backoff, or, at
the last allowed delivery, a dead letter on ``dlq.<subject>`` (original headers
plus the reason) and term. A message that can never be handled (non-UTF-8 or
oversized headers, a body that is not JSON for a JSON handler) → error span and
a dead letter at once: no hot redelivery loop. Nothing here raises into the
Agent's loops; a failed dead-letter publish naks, so nothing is lost. A
``CancelledError`` the handler raises itself is such an exception too; only a
step cancelled by the Agent stopping is left unsettled, for redelivery. While a
JetStream handler runs, ``KeepAlive`` keeps its message from being redelivered,
for up to ``max_processing``.

On core NATS (``retries=False``) there is nothing to settle and no redelivery:
every failure is dead-lettered at once, and a dead letter that cannot be
published is logged and lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from instrumentation import semconv, wire
from instrumentation.audit import AuditCapture
from instrumentation.errors import BadMessageError
from instrumentation.event import Event
from instrumentation.event_publisher import EventPublisher
from instrumentation.heartbeat import AgentCounters
from instrumentation.keep_alive import KeepAlive
from instrumentation.messaging_spans import MessagingSpans, jetstream_attributes
from instrumentation.propagation import extract_delivered, header_value
from instrumentation.throttled_log import ThrottledWarning
from instrumentation.traced_message import current_workflow_id

log = logging.getLogger(__name__)

Decode = Literal["json", "text", "bytes"]
HandlerFunction = Callable[[Event], Awaitable[Any]]
_REASON_CAP = 1024
_LOG_EVERY_S = 5.0  # a failing handler is logged at once, then at most this often
_NO_ATTRIBUTES: Mapping[str, Any] = MappingProxyType({})  # a core message's nats attributes


@dataclass(frozen=True)
class Handler:
    subject: str
    queue: str
    fn: HandlerFunction
    decode: Decode = "json"


def header_problem(headers: Mapping[str, str], max_header_bytes: int) -> str | None:
    """Why these headers cannot be trusted, or None."""
    values = "".join(headers.values())  # one scan of them all in C, for every message
    if "\ufffd" in values:
        key = next(k for k, v in headers.items() if "\ufffd" in v)
        return f"header {key!r} is not valid UTF-8"
    size = len(values) + sum(map(len, headers)) + 4 * len(headers)
    if size > max_header_bytes:
        return f"headers are {size} bytes, more than the {max_header_bytes} an agent accepts"
    return None


def decode_body(decode: Decode, raw: bytes, subject: str) -> Any:
    if decode == "bytes":
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadMessageError(subject=subject, reason=f"body is not UTF-8 ({exc})") from exc
    if decode == "text":
        return text
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadMessageError(subject=subject, reason=f"body is not JSON ({exc})") from exc


class DeliveryProcessor:
    def __init__(
        self,
        *,
        service: str,
        spans: MessagingSpans,
        publisher: EventPublisher,
        audit: AuditCapture,
        counters: AgentCounters,
        retries: bool,
        max_deliveries: int,
        backoff: Sequence[float],
        max_header_bytes: int,
        keep_alive: KeepAlive,
    ) -> None:
        self._service = service
        self._spans = spans
        self._publisher = publisher
        self._audit = audit
        self._counters = counters
        self._retries = retries
        self._max_deliveries = max_deliveries
        self._backoff = list(backoff) or [0.0]
        self._max_header_bytes = max_header_bytes
        self._keep_alive = keep_alive if retries else None  # core NATS has no ack timer
        self._retry_log = ThrottledWarning(_LOG_EVERY_S, logger=log)
        self._dead_letter_log = ThrottledWarning(_LOG_EVERY_S, logger=log)

    async def process(self, handler: Handler, msg: Any) -> None:
        try:
            await self._process(handler, msg)
        except asyncio.CancelledError:
            raise
        except Exception:  # on JetStream the message is redelivered after ack_wait
            log.exception("%s: unexpected failure on a %s message", self._service, msg.subject)

    async def _process(self, handler: Handler, msg: Any) -> None:
        headers = msg.headers or {}
        delivered = extract_delivered(headers)
        nats_attributes = jetstream_attributes(msg) if self._retries else _NO_ATTRIBUTES
        attempt = nats_attributes.get(semconv.NATS_DELIVERY_COUNT, 1)
        subject = msg.subject
        spans = self._spans
        span, workflow_id = spans.arrive(
            subject, delivered, consumer_group=handler.queue, extra=nats_attributes
        )
        process_context = trace.set_span_in_context(span, delivered.base_context)
        token = otel_context.attach(process_context)
        wf_token = current_workflow_id.set(workflow_id)
        try:
            problem = header_problem(headers, self._max_header_bytes)
            if problem:
                raise BadMessageError(subject=subject, reason=problem)
            raw = msg.data
            data = raw if handler.decode == "bytes" else decode_body(handler.decode, raw, subject)
            if self._audit.enabled:
                span.set_attribute(semconv.CHOREO_AUDIT_INPUT, self._audit.render(subject, data))
            event = Event(
                subject=subject,
                data=data,
                raw=raw,
                headers=headers,
                workflow_id=workflow_id,
                message_id=delivered.message_id,
                attempt=attempt,
                publisher=self._publisher,
                process_span=span,
            )
            if self._keep_alive is None:
                await handler.fn(event)
            else:
                async with self._keep_alive.around(msg, span):
                    await handler.fn(event)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                spans.end_with_error(span, exc, description="cancelled: the agent stopped mid-step")
                raise
            # raised by the handler (a library giving up), not the agent stopping: a
            # failure like any other, so the message is retried or dead-lettered now
            # instead of waiting out ack_wait unsettled
            await self._handler_failed(
                exc, msg, handler, span, process_context, attempt, nats_attributes
            )
        except BadMessageError as exc:
            self._counters.failed += 1
            span.record_exception(exc, timestamp=spans.telemetry.clock())
            span.set_status(Status(StatusCode.ERROR, exc.reason))
            await self._dead_letter(msg, handler, span, exc.reason, attempt, nats_attributes)
        except Exception as exc:
            await self._handler_failed(
                exc, msg, handler, span, process_context, attempt, nats_attributes
            )
        else:
            spans.end(span)
            self._counters.processed += 1
            if self._retries:
                await self._settle("ack", msg, handler, process_context, nats_attributes)
        finally:
            current_workflow_id.reset(wf_token)
            otel_context.detach(token)

    async def _handler_failed(
        self,
        exc: BaseException,
        msg: Any,
        handler: Handler,
        span: Span,
        process_context: Any,
        attempt: int,
        nats_attributes: Mapping[str, Any],
    ) -> None:
        """The handler raised: error span, then nak, or a dead letter at the last delivery
        (at once on core NATS)."""
        self._counters.failed += 1
        error = f"{type(exc).__name__}: {exc}"
        span.record_exception(exc, timestamp=self._spans.telemetry.clock())
        span.set_status(Status(StatusCode.ERROR, error))
        if not self._retries:
            reason = f"failed on core NATS, which does not redeliver; error: {error}"
            await self._dead_letter(msg, handler, span, reason, attempt, nats_attributes)
        elif attempt >= self._max_deliveries:
            reason = f"failed {attempt} of {self._max_deliveries} deliveries; last error: {error}"
            await self._dead_letter(msg, handler, span, reason, attempt, nats_attributes)
        else:
            delay = self._delay(attempt)
            self._retry_log(
                f"{self._service}: handler {_name(handler)} failed on {msg.subject} "
                f"(workflow {current_workflow_id.get()}, attempt {attempt} of "
                f"{self._max_deliveries}); retrying in {delay:g}s",
                error,
            )
            self._spans.end(span)
            await self._settle("nak", msg, handler, process_context, nats_attributes)

    def _delay(self, attempt: int) -> float:
        return self._backoff[min(attempt, len(self._backoff)) - 1]

    async def _settle(
        self,
        operation: str,
        msg: Any,
        handler: Handler,
        parent: Any,
        nats_attributes: Mapping[str, Any],
    ) -> None:
        error = None
        delay = None
        try:
            if operation == "ack":
                await msg.ack()
            elif operation == "nak":
                delay = self._delay(nats_attributes.get(semconv.NATS_DELIVERY_COUNT, 1))
                await msg.nak(delay=delay)
            else:
                await msg.term()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "%s: could not %s a %s message: %s", self._service, operation, msg.subject, error
            )
        self._spans.settle(
            operation,
            msg.subject,
            parent=parent,
            # a span of the workflow, as every span of ours: a query of a run's spans
            # by workflow id finds how its messages were settled
            message_id=header_value(msg.headers, wire.MSG_ID),
            workflow_id=current_workflow_id.get(),
            consumer_group=handler.queue,
            extra=nats_attributes,
            error=error,
            nak_delay_s=delay,
        )

    async def _dead_letter(
        self,
        msg: Any,
        handler: Handler,
        span: Span,
        reason: str,
        attempt: int,
        nats_attributes: Mapping[str, Any],
    ) -> None:
        reason = reason.replace("\r", " ").replace("\n", " ")[:_REASON_CAP]
        headers = {
            k: v for k, v in (msg.headers or {}).items() if not k.startswith("Nats-Expected-")
        }
        headers[wire.DEAD_LETTER_REASON] = reason
        headers[wire.DEAD_LETTER_SERVICE] = self._service
        headers[wire.DEAD_LETTER_DELIVERIES] = str(attempt)
        stream = nats_attributes.get(semconv.NATS_STREAM)
        if stream:
            headers[wire.DEAD_LETTER_STREAM_SEQ] = (
                f"{stream}:{nats_attributes.get(semconv.NATS_STREAM_SEQUENCE)}"
            )
        dlq_subject = wire.DEAD_LETTER_PREFIX + msg.subject
        parent = trace.set_span_in_context(span)
        try:
            await self._publisher.publish_raw(dlq_subject, msg.data, headers=headers, parent=parent)
        except Exception as exc:
            self._spans.end(span)
            if not self._retries:
                log.warning(
                    "%s: could not dead-letter a %s message to %s (%s); core NATS cannot "
                    "redeliver it, so it is lost",
                    self._service,
                    msg.subject,
                    dlq_subject,
                    exc,
                )
                return
            log.warning(
                "%s: could not dead-letter a %s message to %s (%s); it will be redelivered",
                self._service,
                msg.subject,
                dlq_subject,
                exc,
            )
            await self._settle("nak", msg, handler, parent, nats_attributes)
            return
        self._dead_letter_log(
            f"{self._service}: handler {_name(handler)} dead-lettered a {msg.subject} message "
            f"(workflow {current_workflow_id.get()}) to {dlq_subject}; fix the cause, then "
            "republish it from there",
            reason,
        )
        span.set_attribute(semconv.CHOREO_DEAD_LETTERED, True)
        span.set_attribute(semconv.CHOREO_DEAD_LETTER_REASON, reason)
        self._counters.dead_lettered += 1
        self._spans.end(span)
        if self._retries:
            await self._settle("term", msg, handler, parent, nats_attributes)


def _name(handler: Handler) -> str:
    return getattr(handler.fn, "__qualname__", None) or repr(handler.fn)
