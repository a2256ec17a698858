"""``Agent``: the common case of a choreographed service, traced end to end.

    configure(service_name="scorer", nats_url=url)
    agent = Agent("scorer", nats_url=url)

    @agent.on("recruit.cv.parsed", queue="scorer")
    async def score(event):
        await event.emit("recruit.candidate.scored", {"score": 0.82})

    await agent.run()          # until cancelled, agent.stop() or SIGTERM; then drains

``delivery=`` chooses how events travel:

- ``"jetstream"`` (default): events are stored, so a failed step is retried
  with ``backoff`` and dead-lettered after ``max_deliveries``, and an event
  published while its consumers are down waits for them. Business subjects are
  captured by the stream ``stream=`` (default ``CHOREO_EVENTS``), created if
  missing and extended with ``<first token>.>`` for each subject the Agent
  handles or publishes, unless ``stream_subjects=`` lists them exactly. Each
  handler has a durable pull consumer named ``<queue>--<subject>``, shared by
  every instance in that queue group (the queue defaults to the Agent's name).
  ``emit`` and ``start_workflow`` wait for JetStream's ack. A running handler's
  message is kept from redelivery for up to ``max_processing`` (default 600 s; a
  step still running then, or hung, has its message delivered again beside it).
- ``"core"``: plain NATS publish and queue subscriptions, about half the cost
  per event, at most once. Nothing is stored or retried: an event published
  while no instance of a group is subscribed is lost (its publish span shows it
  was sent, so the correlator can report it dropped), and a handler exception records
  the error span and dead-letters the event at once to ``dlq.<subject>`` with
  its original headers and the reason, best effort (kept by the
  ``CHOREO_DEAD_LETTERS`` stream when the server runs JetStream). There are no
  settle spans. ``stream``, ``stream_subjects``, ``max_deliveries``, ``ack_wait``,
  ``max_processing``, ``backoff`` and ``fetch_*`` do not apply. The two mix: a
  core publish on a subject that a stream captures is stored, and JetStream
  Agents consume it.

Either way every event gets the same spans (publish PRODUCER, receive CLIENT
ended on arrival, process CONSUMER child of the publish span with a link to
it), heartbeats go out, and ``run()`` drains in-flight work when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import nats
from opentelemetry import trace

from instrumentation import wire
from instrumentation.acked_publisher import AckedPublisher
from instrumentation.agent_delivery import Decode, DeliveryProcessor, Handler, HandlerFunction
from instrumentation.agent_handlers import check_decode, new_handler
from instrumentation.agent_intake import CoreIntake, JetStreamIntake
from instrumentation.agent_settings import check_agent_settings
from instrumentation.agent_steps import StepRunner
from instrumentation.agent_streams import ensure_stream_covers
from instrumentation.audit import AuditCapture, Redactor
from instrumentation.event_publisher import EventPublisher, new_id
from instrumentation.heartbeat import AgentCounters, HeartbeatPublisher, instance_id
from instrumentation.keep_alive import DEFAULT_MAX_PROCESSING, KeepAlive
from instrumentation.messaging_spans import MessagingSpans
from instrumentation.nats_connect_options import RECONNECTING, connect_options
from instrumentation.nats_connection_log import NatsConnectionLog
from instrumentation.nats_shutdown import close_connection
from instrumentation.stop_signal import release, stop_on_sigterm
from instrumentation.telemetry import DEFAULT_NATS_URL, Telemetry, telemetry_for

log = logging.getLogger(__name__)

Delivery = Literal["jetstream", "core"]


class Agent:
    """A service that reacts to events on NATS, with every step traced."""

    def __init__(
        self,
        name: str,
        *,
        delivery: Delivery = "jetstream",
        nats_url: str = DEFAULT_NATS_URL,
        nats_options: Mapping[str, Any] | None = None,
        telemetry: Telemetry | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        stream: str = wire.EVENTS_STREAM,
        stream_subjects: Sequence[str] | None = None,
        max_deliveries: int = 5,
        ack_wait: float = 30.0,
        max_processing: float = DEFAULT_MAX_PROCESSING,
        backoff: Sequence[float] = (1.0, 5.0, 30.0),
        max_in_flight: int = 64,
        fetch_batch: int = 64,
        fetch_timeout: float = 1.0,
        publish_timeout: float = 5.0,
        heartbeat_interval: float = 10.0,
        drain_timeout: float = 30.0,
        audit: bool = False,
        audit_max_bytes: int = 4096,
        redact: Redactor | None = None,
        max_header_bytes: int = 16 * 1024,
        handle_sigterm: bool = True,
    ) -> None:
        check_agent_settings(
            name=name,
            delivery=delivery,
            max_deliveries=max_deliveries,
            max_in_flight=max_in_flight,
            heartbeat_interval=heartbeat_interval,
        )
        self.name = name
        self.delivery: Delivery = delivery
        self.nats_url = nats_url
        self.stream = stream
        self.telemetry = telemetry_for(name, telemetry=telemetry, tracer_provider=tracer_provider)
        self.counters = AgentCounters()
        self.heartbeat_interval = heartbeat_interval
        user_options = nats_options or {}
        self._nats_log = NatsConnectionLog(
            who=f"agent {name}",
            servers=user_options.get("servers", nats_url),
            option="the Agent's nats_options['servers']"
            if "servers" in user_options
            else "the Agent's nats_url=",
            retry_every=user_options.get(
                "reconnect_time_wait", RECONNECTING["reconnect_time_wait"]
            ),
            logger=log,
            open_=lambda: self._nc is not None and not self._nc.is_closed,
        )
        # the user's options win over ours; a name nats.connect() does not take is refused now
        self._connect_options = connect_options(
            setting="nats_options",
            defaults={
                "servers": nats_url,
                "name": name,
                **RECONNECTING,
                "error_cb": self._nats_log.error,
                "disconnected_cb": self._nats_log.disconnected,
                "reconnected_cb": self._nats_log.reconnected,
            },
            user=nats_options,
        )
        self._stream_subjects = list(stream_subjects) if stream_subjects else None
        self._max_deliveries = max_deliveries
        self._ack_wait = ack_wait
        self._max_in_flight = max_in_flight
        self._fetch_batch = fetch_batch
        self._fetch_timeout = fetch_timeout
        self._drain_timeout = drain_timeout
        self._handle_sigterm = handle_sigterm
        self._handlers: list[Handler] = []
        self._spans = MessagingSpans(self.telemetry)
        self._audit = AuditCapture(enabled=audit, max_bytes=audit_max_bytes, redact=redact)
        self._publisher = EventPublisher(
            spans=self._spans,
            audit=self._audit,
            ack_timeout=publish_timeout,
            ensure_subject=self._ensure_subject,
            wait_for_ack=delivery == "jetstream",
        )
        self._delivery = DeliveryProcessor(
            service=name,
            spans=self._spans,
            publisher=self._publisher,
            audit=self._audit,
            counters=self.counters,
            retries=delivery == "jetstream",
            max_deliveries=max_deliveries,
            backoff=backoff,
            max_header_bytes=max_header_bytes,
            keep_alive=KeepAlive(service=name, ack_wait=ack_wait, max_processing=max_processing),
        )
        self._steps = StepRunner(
            step=self._delivery.process, max_workers=max_in_flight, counters=self.counters
        )
        self.instance = instance_id(self.telemetry, name)
        self._heartbeats = HeartbeatPublisher(
            service=name,
            instance=self.instance,
            interval=heartbeat_interval,
            counters=self.counters,
            telemetry=self.telemetry,
            connection=lambda: self._nc,
        )
        self._nc: Any = None
        self._js: Any = None
        self._connect_lock = asyncio.Lock()
        self._stream_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._intake: JetStreamIntake | CoreIntake | None = None

    # --- declaring handlers -------------------------------------------------------
    def on(
        self, subject: str, *, queue: str | None = None, decode: Decode = "json"
    ) -> Callable[[HandlerFunction], HandlerFunction]:
        """Handle events on ``subject`` (wildcards allowed) with ``async def h(event)``, in
        queue group ``queue`` (default: the Agent's name; no dots, like the name). ``decode``
        gives ``event.data``: ``"json"`` (default), ``"text"`` or ``"bytes"``."""
        check_decode(decode)

        def register(fn: HandlerFunction) -> HandlerFunction:
            queue_ = queue or self.name
            self._handlers.append(new_handler(subject=subject, queue=queue_, fn=fn, decode=decode))
            return fn

        return register

    # --- connection ---------------------------------------------------------------
    async def connect(self) -> None:
        """Connect to NATS, waiting (and retrying) while it is unreachable."""
        if self._nc is not None and not self._nc.is_closed:
            return  # every publish asks: answer without taking the lock
        async with self._connect_lock:
            if self._nc is not None and not self._nc.is_closed:
                return
            self._nc = await nats.connect(**self._connect_options)
            self._js = self._nc.jetstream()
            self._publisher.nc = self._nc
            if self.delivery == "jetstream":
                self._publisher.acked = AckedPublisher(self._nc)
                await self._publisher.acked.start()
            self._nats_log.connected()

    async def close(self) -> None:
        """Flush what was published (acks included) and disconnect."""
        if self._nc is not None:
            await close_connection(self._nc, flush_timeout=2)
        self._nc = None

    async def __aenter__(self) -> Agent:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _ensure_subject(self, subject: str) -> None:
        async with self._stream_lock:
            await ensure_stream_covers(
                self._js, stream=self.stream, subjects=[subject], exact=self._stream_subjects
            )

    # --- publishing -------------------------------------------------------------------
    async def start_workflow(
        self,
        subject: str,
        data: Any,
        *,
        workflow_id: str | None = None,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Publish the first event of a new workflow (a new trace); returns its workflow id."""
        await self.connect()
        workflow_id = workflow_id or new_id()
        await self._publisher.publish(
            subject,
            data,
            workflow_id=workflow_id,
            message_id=message_id,
            headers=headers,
            root=True,
        )
        return workflow_id

    async def publish(
        self,
        subject: str,
        data: Any,
        *,
        workflow_id: str,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Publish an event of an existing workflow from outside a handler; returns its id."""
        await self.connect()
        return await self._publisher.publish(
            subject, data, workflow_id=workflow_id, message_id=message_id, headers=headers
        )

    # --- running -------------------------------------------------------------------------
    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until ``run()`` has its consumers in place."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    def stop(self) -> None:
        """Ask ``run()`` to stop fetching, drain in-flight work and return."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until cancelled, ``stop()`` or SIGTERM; then drain in-flight work and
        disconnect (``stop_signal.py``: unless ``handle_sigterm`` is false, or the
        process handles SIGTERM itself)."""
        self._stopping.clear()
        if self._handle_sigterm:
            stop_on_sigterm(self.stop)
        try:
            await self._run()
        finally:
            release(self.stop)

    async def _run(self) -> None:
        await self.connect()
        intake = self._new_intake()
        self._intake = intake
        try:
            await intake.start()
        except BaseException:
            await intake.stop()
            await self.close()
            raise
        heartbeats = asyncio.create_task(self._heartbeats.run())
        self._ready.set()
        cancelled = False
        try:
            await self._stopping.wait()
        except asyncio.CancelledError:
            cancelled = True
        finally:
            self._stopping.set()
            try:
                await self._drain(intake, heartbeats)
            except asyncio.CancelledError:
                cancelled = True
                await self._stop_now(intake, heartbeats)
        if cancelled:
            raise asyncio.CancelledError

    def _new_intake(self) -> JetStreamIntake | CoreIntake:
        if self.delivery == "core":
            return CoreIntake(
                nc=self._nc,
                js=self._js,
                handlers=self._handlers,
                dispatch=self._dispatch,
                free_slots=self._free_slots,
                slot_freed=self._steps.slot_freed,
                drain_timeout=self._drain_timeout,
            )
        return JetStreamIntake(
            nc=self._nc,
            js=self._js,
            stream=self.stream,
            stream_subjects=self._stream_subjects,
            stream_lock=self._stream_lock,
            handlers=self._handlers,
            dispatch=self._dispatch,
            free_slots=self._free_slots,
            slot_freed=self._steps.slot_freed,
            ack_wait=self._ack_wait,
            max_deliveries=self._max_deliveries,
            max_in_flight=self._max_in_flight,
            fetch_batch=self._fetch_batch,
            fetch_timeout=self._fetch_timeout,
        )

    def _free_slots(self) -> int:
        """Slots not taken by events in flight nor promised to open pull requests, so
        several handlers together stay within ``max_in_flight``."""
        owed = self._intake.outstanding if self._intake is not None else 0
        return self._max_in_flight - self.counters.in_flight - owed

    def _dispatch(self, handler: Handler, msg: Any) -> None:
        self._steps.submit(handler, msg)

    async def _drain(
        self, intake: JetStreamIntake | CoreIntake, heartbeats: asyncio.Task[None]
    ) -> None:
        await intake.stop()
        redelivered = self.delivery == "jetstream"
        await self._steps.drain(
            agent=self.name, timeout=self._drain_timeout, redelivered=redelivered
        )
        await self._steps.cancel()  # what did not end in time, and the idle workers
        heartbeats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeats
        await self._heartbeats.send(stopping=True)
        self._ready.clear()
        if self.telemetry.exporter is not None:
            await asyncio.to_thread(self.telemetry.force_flush, timeout=2)
        await self.close()

    async def _stop_now(
        self, intake: JetStreamIntake | CoreIntake, heartbeats: asyncio.Task[None]
    ) -> None:
        """Cancelled again while draining: in-flight steps are cancelled instead of
        awaited, but the connection is still closed, so nothing is left running."""
        intake.cancel()
        heartbeats.cancel()
        self._ready.clear()
        try:
            await self._steps.cancel()
        finally:
            await self.close()
