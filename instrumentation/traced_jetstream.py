"""The traced JetStream context: acked publish, push and pull consumers.

    js = traced_nats.jetstream()
    ack = await js.publish("orders.placed", b"...")        # PRODUCER span, waits for the ack
    await js.subscribe("orders.placed", durable="billing", cb=handle)   # push: process spans
    psub = await js.pull_subscribe("orders.placed", durable="billing")
    for msg in await psub.fetch(10):                         # pull: receive span per message
        with msg.processing():
            ...
        await msg.ack()                                      # settle span

Push callbacks are acked after they return (settle span ``ack``) unless
``manual_ack=True``; a callback that raises leaves the message to redelivery.
Any other attribute reads through to nats-py's ``JetStreamContext``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from instrumentation import semconv
from instrumentation.traced_message import TracedMsg, TracedSubscription

if TYPE_CHECKING:
    from instrumentation.traced_client import MessageHandler, TracedNats


class TracedPullSubscription:
    """A pull consumer whose fetched messages come with a receive span each."""

    def __init__(self, psub: Any, *, client: TracedNats, consumer_group: str | None) -> None:
        self.psub = psub
        self._client = client
        self._group = consumer_group

    async def fetch(self, batch: int = 1, timeout: float | None = 5.0) -> list[TracedMsg]:
        msgs = await self.psub.fetch(batch, timeout=timeout)
        out = []
        for msg in msgs:
            traced = TracedMsg(msg, spans=self._client.spans, consumer_group=self._group)
            traced.record_receive(kind=SpanKind.CLIENT)
            out.append(traced)
        return out

    async def consumer_info(self) -> Any:
        return await self.psub.consumer_info()

    async def unsubscribe(self) -> None:
        await self.psub.unsubscribe()


class TracedJetStream:
    """nats-py's ``JetStreamContext`` with tracing on publish and consume."""

    def __init__(self, js: Any, *, client: TracedNats) -> None:
        self.js = js
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.js, name)

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        *,
        timeout: float | None = None,
        stream: str | None = None,
        headers: Mapping[str, str] | None = None,
        message_id: str | None = None,
        workflow_id: str | None = None,
        context: Context | None = None,
    ) -> Any:
        """Publish and wait for JetStream's ack, in a PRODUCER span; returns the ``PubAck``."""
        span, out = self._client._prepare(
            subject, payload, headers, message_id, workflow_id, context
        )
        try:
            ack = await self.js.publish(
                subject, payload, timeout=timeout, stream=stream, headers=out
            )
        except BaseException as exc:
            self._client.spans.end_with_error(span, exc)
            raise
        span.set_attribute(semconv.NATS_STREAM, ack.stream)
        span.set_attribute(semconv.NATS_STREAM_SEQUENCE, ack.seq)
        if ack.duplicate:
            span.set_attribute(semconv.NATS_DUPLICATE, True)
        self._client.spans.end(span)
        return ack

    async def subscribe(
        self,
        subject: str,
        *,
        queue: str | None = None,
        durable: str | None = None,
        cb: MessageHandler | None = None,
        manual_ack: bool = False,
        **options: Any,
    ) -> Any:
        """A push consumer; with ``cb`` each message is processed in a process span."""
        group = queue or durable
        wrapped = None
        if cb is not None:
            wrapped = self._client.traced_callback(cb, queue=group, ack_after=not manual_ack)
        sub = await self.js.subscribe(
            subject, queue=queue, durable=durable, cb=wrapped, manual_ack=True, **options
        )
        return TracedSubscription(sub, spans=self._client.spans, consumer_group=group)

    async def pull_subscribe(
        self, subject: str, durable: str | None = None, **options: Any
    ) -> TracedPullSubscription:
        psub = await self.js.pull_subscribe(subject, durable=durable, **options)
        return TracedPullSubscription(psub, client=self._client, consumer_group=durable)
