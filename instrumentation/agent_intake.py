"""How an ``Agent``'s handlers get their messages: JetStream pull consumers or core
NATS queue subscriptions. Both hand each message to ``dispatch`` and keep the
Agent's ``max_in_flight`` bound; neither handles a message itself.

- ``JetStreamIntake``: a durable pull consumer per (queue group, subject), on a
  stream that is created or extended to capture the handlers' subjects. Messages
  are stored, acked, retried and dead-lettered after ``max_deliveries``.
- ``CoreIntake``: a core NATS subscription per handler in queue group ``queue``.
  Nothing is stored: a message published while no instance of the group is
  subscribed is gone, and a message taken from the server is not redelivered.
  While ``max_in_flight`` steps run, further messages wait in the client's
  pending queue (nats-py drops them as a slow consumer beyond its limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from instrumentation.agent_delivery import Handler
from instrumentation.agent_streams import (
    ensure_consumer,
    ensure_dead_letter_stream,
    ensure_stream_covers,
)
from instrumentation.pull_consumer import PullConsumer
from instrumentation.wire import durable_name

log = logging.getLogger(__name__)

Dispatch = Callable[[Handler, Any], None]


class JetStreamIntake:
    """Durable pull consumers, one per handler, sharing the Agent's free slots."""

    def __init__(
        self,
        *,
        nc: Any,
        js: Any,
        stream: str,
        stream_subjects: Sequence[str] | None,
        stream_lock: asyncio.Lock,
        handlers: Sequence[Handler],
        dispatch: Dispatch,
        free_slots: Callable[[], int],
        slot_freed: asyncio.Event,
        ack_wait: float,
        max_deliveries: int,
        max_in_flight: int,
        fetch_batch: int,
        fetch_timeout: float,
    ) -> None:
        self._nc = nc
        self._js = js
        self._stream = stream
        self._stream_subjects = stream_subjects
        self._stream_lock = stream_lock
        self._handlers = list(handlers)
        self._dispatch = dispatch
        self._free_slots = free_slots
        self._slot_freed = slot_freed
        self._ack_wait = ack_wait
        self._max_deliveries = max_deliveries
        self._max_in_flight = max_in_flight
        self._fetch_batch = fetch_batch
        self._fetch_timeout = fetch_timeout
        self._consumers: list[PullConsumer] = []
        self._loops: list[asyncio.Task[None]] = []

    @property
    def outstanding(self) -> int:
        """Messages the open pull requests may still bring (they are owed slots)."""
        return sum(consumer.outstanding for consumer in self._consumers)

    async def start(self) -> None:
        prepared = await self._prepare_consumers()
        self._consumers = [
            PullConsumer(
                self._nc,
                stream=self._stream,
                durable=durable,
                deliver=functools.partial(self._dispatch, handler),
                free_slots=self._free_slots,
                slot_freed=self._slot_freed,
                # each handler's requests get a fair share, so an idle handler's
                # open request never holds every slot while another's events wait
                max_batch=max(1, min(self._fetch_batch, self._max_in_flight // len(prepared))),
                expires=self._fetch_timeout,
            )
            for handler, durable in prepared
        ]
        self._loops = [asyncio.create_task(c.run()) for c in self._consumers]

    async def stop(self) -> None:
        """Fetch nothing more; returns once the open pull requests are given up."""
        for consumer in self._consumers:
            consumer.stop()
        if self._loops:
            await asyncio.wait(self._loops, timeout=self._fetch_timeout + 3)
        for loop in self._loops:
            loop.cancel()

    def cancel(self) -> None:
        """Give up the open pull requests at once (the connection is about to close)."""
        for consumer in self._consumers:
            consumer.stop()
        for loop in self._loops:
            loop.cancel()

    async def _prepare_consumers(self) -> list[tuple[Handler, str]]:
        if self._handlers:
            async with self._stream_lock:
                await ensure_stream_covers(
                    self._js,
                    stream=self._stream,
                    subjects=[h.subject for h in self._handlers],
                    exact=self._stream_subjects,
                )
        await ensure_dead_letter_stream(self._js)
        prepared = []
        for handler in self._handlers:
            durable = durable_name(handler.queue, handler.subject)
            await ensure_consumer(
                self._js,
                stream=self._stream,
                durable=durable,
                subject=handler.subject,
                ack_wait=self._ack_wait,
                max_deliveries=self._max_deliveries,
                max_ack_pending=max(self._max_in_flight * 4, 256),
            )
            prepared.append((handler, durable))
        return prepared


class CoreIntake:
    """Core NATS queue subscriptions, one per handler, sharing the Agent's free slots."""

    def __init__(
        self,
        *,
        nc: Any,
        js: Any,
        handlers: Sequence[Handler],
        dispatch: Dispatch,
        free_slots: Callable[[], int],
        slot_freed: asyncio.Event,
        drain_timeout: float,
    ) -> None:
        self._nc = nc
        self._js = js
        self._handlers = list(handlers)
        self._dispatch = dispatch
        self._free_slots = free_slots
        self._slot_freed = slot_freed
        self._drain_timeout = drain_timeout
        self._subscriptions: list[Any] = []

    outstanding = 0  # nothing is owed: the server pushes, the client queues

    async def start(self) -> None:
        await self._keep_dead_letters()
        for handler in self._handlers:
            self._subscriptions.append(
                await self._nc.subscribe(
                    handler.subject,
                    queue=handler.queue,
                    cb=functools.partial(self._on_message, handler),
                )
            )
        # the server knows of the subscriptions once this round trip is back, so an
        # event published after run() is ready reaches this instance
        await self._nc.flush()

    async def stop(self) -> None:
        """Take no more messages from the server; hand over those already received."""
        subscriptions, self._subscriptions = self._subscriptions, []
        for sub in subscriptions:
            try:
                await asyncio.wait_for(sub.drain(), self._drain_timeout)
            except Exception as exc:  # closed connection, or a step that never ends
                log.debug("subscription to %s not drained: %s", sub.subject, exc)
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    def cancel(self) -> None:
        """Take no more messages (closing the connection ends the subscriptions)."""
        self._subscriptions = []

    async def _on_message(self, handler: Handler, msg: Any) -> None:
        # awaited by the subscription's own task: while no slot is free, the
        # following messages wait in the client's pending queue
        while self._free_slots() <= 0:
            self._slot_freed.clear()
            await self._slot_freed.wait()
        self._dispatch(handler, msg)

    async def _keep_dead_letters(self) -> None:
        """Dead letters are published with core NATS too; when the server runs
        JetStream, the ``CHOREO_DEAD_LETTERS`` stream keeps them."""
        try:
            await asyncio.wait_for(ensure_dead_letter_stream(self._js), 5)
        except Exception as exc:
            log.info(
                "no JetStream stream keeps dead letters (%s: %s); they are published to "
                "dlq.<subject> for whoever subscribes",
                type(exc).__name__,
                exc,
            )
