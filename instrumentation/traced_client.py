"""A traced wrapper around a plain nats-py client, for services not built on ``Agent``.

    nc = await TracedNats.connect("nats://127.0.0.1:4222", service_name="billing")
    await nc.publish("orders.paid", b"...")                 # PRODUCER span, context injected
    await nc.subscribe("orders.placed", queue="billing", cb=handle)   # process span per message
    async for msg in (await nc.subscribe("orders.*")).messages: ...   # receive span per message
    reply = await nc.request("pricing.quote", b"...")   # CLIENT span; traced server: SERVER
    js = nc.jetstream()                                     # see traced_jetstream

Every publish carries ``traceparent``, ``tracestate``, ``baggage`` (when set),
``Nats-Msg-Id`` and ``Choreo-Workflow-Id``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from instrumentation import semconv, wire
from instrumentation.messaging_spans import MessagingSpans
from instrumentation.nats_connection_log import NatsConnectionLog
from instrumentation.nats_first_connect import connect_or_explain
from instrumentation.nats_shutdown import close_connection, drain_connection
from instrumentation.propagation import header_value
from instrumentation.publish_checks import check_payload, check_publish_subject
from instrumentation.telemetry import Telemetry, telemetry_for
from instrumentation.traced_jetstream import TracedJetStream
from instrumentation.traced_message import TracedMsg, TracedSubscription, current_workflow_id

log = logging.getLogger(__name__)

MessageHandler = Callable[[TracedMsg], Awaitable[None]]


def new_message_id() -> str:
    return os.urandom(16).hex()


class TracedNats:
    """nats-py's client with tracing on publish, request, subscribe and JetStream."""

    def __init__(
        self,
        nc: Any,
        *,
        service_name: str,
        telemetry: Telemetry | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.nc = nc
        self.service_name = service_name
        self.telemetry = telemetry_for(
            service_name, telemetry=telemetry, tracer_provider=tracer_provider
        )
        self.spans = MessagingSpans(self.telemetry)

    @classmethod
    async def connect(
        cls,
        servers: str | list[str] = "nats://127.0.0.1:4222",
        *,
        service_name: str,
        telemetry: Telemetry | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        **options: Any,
    ) -> TracedNats:
        """``nats.connect(servers, **options)`` wrapped; options pass through untouched.

        A server that does not answer fails the first connect within seconds (a few
        short attempts, unless ``options`` say how to try) with ``NatsUnreachableError``
        naming it. Once connected, and unless ``max_reconnect_attempts`` is given, it
        reconnects for as long as NATS is away, as an Agent does. Without an
        ``error_cb`` of the caller's, errors are logged as one throttled line."""
        options.setdefault("name", service_name)
        connection_log = NatsConnectionLog(
            who=f"service {service_name}",
            servers=servers,
            option="TracedNats.connect(servers=...)",
            retry_every=options.get("reconnect_time_wait", 2),
            logger=log,
            open_=lambda: True,
        )
        nc = await connect_or_explain(
            servers=servers,
            options=options,
            option="TracedNats.connect(servers=...)",
            error_cb=options.get("error_cb", connection_log.error),
        )
        if "max_reconnect_attempts" not in options:
            # nats-py gives up after 60 attempts (~2 min): the service went on, deaf.
            # Set once connected, where nats-py reads it
            nc.options["max_reconnect_attempts"] = -1
        return cls(
            nc, service_name=service_name, telemetry=telemetry, tracer_provider=tracer_provider
        )

    async def __aenter__(self) -> TracedNats:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- publishing --------------------------------------------------------------
    def _prepare(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None,
        message_id: str | None,
        workflow_id: str | None,
        context: Context | None,
        operation_name: str = "publish",
        kind: SpanKind = SpanKind.PRODUCER,
    ) -> tuple[Any, dict[str, str]]:
        check_publish_subject(subject)
        check_payload(subject, payload)
        # ids the caller put in the headers are kept
        message_id = message_id or header_value(headers, wire.MSG_ID) or new_message_id()
        workflow_id = workflow_id or header_value(headers, wire.WORKFLOW_ID)
        span = self.spans.start_publish(
            subject,
            message_id=message_id,
            workflow_id=None,
            body_size=len(payload),
            context=context,
            operation_name=operation_name,
            kind=kind,
        )
        workflow_id = (
            workflow_id or current_workflow_id.get() or f"{span.get_span_context().trace_id:032x}"
        )
        span.set_attribute(semconv.CHOREO_WORKFLOW_ID, workflow_id)
        return span, self.spans.publish_headers(
            span, message_id=message_id, workflow_id=workflow_id, headers=headers
        )

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        *,
        reply: str = "",
        headers: Mapping[str, str] | None = None,
        message_id: str | None = None,
        workflow_id: str | None = None,
        context: Context | None = None,
    ) -> str:
        """Publish ``payload`` (bytes) with a PRODUCER span; returns the message id
        (``Nats-Msg-Id``). A str or other object raises ``PayloadTypeError``."""
        span, out = self._prepare(subject, payload, headers, message_id, workflow_id, context)
        try:
            await self.nc.publish(subject, payload, reply=reply, headers=out)
        except BaseException as exc:
            self.spans.end_with_error(span, exc)
            raise
        self.spans.end(span)
        return out[wire.MSG_ID]

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        *,
        timeout: float = 2.0,
        headers: Mapping[str, str] | None = None,
        message_id: str | None = None,
        workflow_id: str | None = None,
        context: Context | None = None,
    ) -> Any:
        """Request/reply inside a CLIENT span; returns the reply ``Msg``."""
        span, out = self._prepare(
            subject,
            payload,
            headers,
            message_id,
            workflow_id,
            context,
            operation_name="request",
            kind=SpanKind.CLIENT,
        )
        try:
            reply = await self.nc.request(subject, payload, timeout=timeout, headers=out)
        except BaseException as exc:
            self.spans.end_with_error(span, exc)
            raise
        self.spans.end(span)
        return reply

    # --- subscribing --------------------------------------------------------------
    def traced_callback(
        self, cb: MessageHandler, *, queue: str | None, ack_after: bool = False
    ) -> Callable[[Any], Any]:
        """Wrap ``cb`` so each message is processed inside a process span.

        A core message with a reply subject (a request) gets a SERVER span. With
        ``ack_after`` a JetStream message is acked (settle span) once ``cb`` returns.
        """

        async def on_message(msg: Any) -> None:
            traced = TracedMsg(msg, spans=self.spans, consumer_group=queue)
            is_request = bool(msg.reply) and not msg.reply.startswith("$JS.")
            with traced.processing(kind=SpanKind.SERVER if is_request else SpanKind.CONSUMER):
                await cb(traced)
            if ack_after:
                await traced.ack()

        return on_message

    async def subscribe(
        self,
        subject: str,
        *,
        queue: str = "",
        cb: MessageHandler | None = None,
        **options: Any,
    ) -> TracedSubscription:
        """Subscribe; with ``cb`` each message runs in a process span, else iterate ``messages``."""
        wrapped = self.traced_callback(cb, queue=queue or None) if cb is not None else None
        sub = await self.nc.subscribe(subject, queue=queue, cb=wrapped, **options)
        return TracedSubscription(sub, spans=self.spans, consumer_group=queue or None)

    def jetstream(self, **options: Any) -> TracedJetStream:
        return TracedJetStream(self.nc.jetstream(**options), client=self)

    # --- lifecycle --------------------------------------------------------------------
    async def flush(self, timeout: float = 2.0) -> None:
        await self.nc.flush(timeout)

    async def drain(self) -> None:
        """Drain every subscription, then close (cancellable without asyncio noise)."""
        await drain_connection(self.nc)

    async def close(self) -> None:
        """Flush and close; with NATS gone too, nothing of the connection is left running."""
        await close_connection(self.nc)
