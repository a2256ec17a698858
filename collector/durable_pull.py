"""Fetching from a durable JetStream pull consumer, whatever headers the messages carry.

nats-py's ``PullSubscription.fetch`` takes any message with a ``Status`` header
for the server's own status reply: a span batch published with ``Status: 404``
was skipped and redelivered forever, and one with any other value made ``fetch``
raise (a ``KeyError``) on every attempt, stopping ingest. Here a message is the
stream's when it carries a JetStream ack subject, as every stored message does
and no status reply does; only the others are read as statuses.

A consumer that no longer exists (deleted, or its stream with it: JetStream lost
its storage, an operator ran ``nats stream rm``) raises ``ConsumerGoneError``,
so the caller can create both again (``create_again``) instead of fetching
nothing forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, ConsumerInfo
from nats.js.errors import NotFoundError

from instrumentation.errors import ChoreoscopeError
from instrumentation.throttled_log import ThrottledWarning

log = logging.getLogger(__name__)

API_PREFIX: Final = "$JS.API"
ACK_PREFIX: Final = "$JS.ACK."
STATUS_GRACE_S: Final = 0.25
"""How long past a request's expiry its end-of-request status is waited for."""
LINGER_S: Final = 0.02
"""How long a fetch, once a waiting request brought a message, waits for more (those
published with it). Waiting for a whole batch held a trickle's message until the
request expired: a span published alone was visible only ~2 s later, a second of it
here."""
_STATUS, _DESCRIPTION = "Status", "Description"


class ConsumerGoneError(ChoreoscopeError):
    """The durable consumer (or its stream) does not exist any more."""

    transient = True


def is_stored_message(msg: Msg) -> bool:
    """Whether ``msg`` is a message of the stream (acknowledgeable), not a status reply."""
    return bool(msg.reply) and msg.reply.startswith(ACK_PREFIX)


class DurablePull:
    """Fetches batches from the durable consumer ``config.durable_name`` of ``stream``."""

    def __init__(
        self, *, nc: Client, js: JetStreamContext, stream: str, config: ConsumerConfig
    ) -> None:
        if not config.durable_name:
            raise ValueError("a DurablePull needs a durable consumer name")
        self.nc = nc
        self.js = js
        self.stream = stream
        self.config = config
        self.durable: str = config.durable_name
        self._next = f"{API_PREFIX}.CONSUMER.MSG.NEXT.{stream}.{self.durable}"
        # each request answers on a subject of its own (<inbox>.<n>), so a status that
        # ends an earlier request is never taken for the end of the current one
        self._inbox = nc.new_inbox()
        self._requests = itertools.count()
        self._sub: Subscription | None = None

    async def ensure_consumer(self) -> bool:
        """Create the durable consumer unless it exists (its stream must), and listen;
        True if this call created it."""
        created = False
        try:
            await self.js.consumer_info(self.stream, self.durable)
        except NotFoundError:
            await self.js.add_consumer(self.stream, self.config)
            created = True
        if self._sub is None:
            self._sub = await self.nc.subscribe(f"{self._inbox}.*")
        return created

    async def create_again(
        self,
        *,
        create_stream: Callable[[], Awaitable[bool]] | None,
        held: str,
        warn: ThrottledWarning,
    ) -> None:
        """After ``ConsumerGoneError``: the stream (``create_stream``, True if it had
        to) and the consumer, as at start; a failure is warned of and waits a second.
        Only what was really created is logged: a 503 also answers while JetStream is
        unavailable for a moment (a leader election), the consumer still there.
        ``held`` names what the stream holds, for the warning that it was lost."""
        try:
            stream_lost = create_stream is not None and await create_stream()
            consumer_lost = await self.ensure_consumer()
        except (nats.errors.Error, TimeoutError) as e:
            warn(f"creating the stream {self.stream} and its consumer again failed; retrying", e)
            await asyncio.sleep(1.0)
            return
        if consumer_lost:
            log.warning(
                "created the JetStream consumer %s again%s; consuming %s from its first message",
                self.durable,
                f" with its stream ({held} it held that were not yet stored are lost)"
                if stream_lost
                else "",
                self.stream,
            )

    async def fetch(self, *, batch: int, timeout: float, gather: bool = False) -> list[Msg]:
        """Up to ``batch`` messages, waiting at most about ``timeout`` s for the first;
        with ``gather``, for the whole batch (a caller that writes a file per fetch:
        a trickle then makes one file a ``timeout``, not one a message).

        As nats-py's own fetch: first what the consumer holds now (``no_wait``: the
        server answers at once, "no messages" when it holds none), and only then a
        request that waits. A waiting request (``expires``) delivered a backlog about
        three times slower: ingest fell 17% behind."""
        if self._sub is None:
            await self.ensure_consumer()
        deadline = time.monotonic() + timeout
        msgs = await self._pull(batch, {"no_wait": True}, until=deadline + STATUS_GRACE_S)
        left = deadline - time.monotonic()
        if msgs or left <= 0:
            return msgs
        if gather:  # it ends with the batch, or expires with the fetch: none is left open
            return await self._pull(
                batch, {"expires": int(left * 1e9)}, until=deadline + STATUS_GRACE_S
            )
        # a waiting request for one message, which ends with it; then, those published
        # with it. A waiting request for a batch, returned from at its first message,
        # stayed open and brought later ones after the fetch: a collector stopping then
        # dropped them with its inbox, and JetStream held them for ack_wait (30 s)
        msgs = await self._pull(1, {"expires": int(left * 1e9)}, until=deadline + STATUS_GRACE_S)
        if not msgs or batch == 1:
            return msgs
        await asyncio.sleep(LINGER_S)
        until = max(deadline, time.monotonic()) + STATUS_GRACE_S
        try:
            return msgs + await self._pull(batch - 1, {"no_wait": True}, until=until)
        except (ConsumerGoneError, nats.errors.Error, TimeoutError):
            # the one it has is stored all the same (dropped, it waited out ack_wait to
            # come again); the next fetch meets the failure, and says so
            return msgs

    async def _pull(self, batch: int, options: dict[str, object], *, until: float) -> list[Msg]:
        """One pull request: the stored messages it (or an earlier one, late) brings,
        until ``batch`` of them, its own end, or ``until`` (monotonic)."""
        assert self._sub is not None
        reply = f"{self._inbox}.{next(self._requests)}"
        request = json.dumps({"batch": batch, **options}).encode()
        await self.nc.publish(self._next, request, reply=reply)
        msgs: list[Msg] = []
        while len(msgs) < batch:
            try:
                msg = await self._sub.next_msg(timeout=max(0.001, until - time.monotonic()))
            except TimeoutError:  # nats.errors.TimeoutError is one
                break
            if is_stored_message(msg):
                msgs.append(msg)
            elif msg.subject == reply and self._ends_request(msg):
                break
        return msgs

    def _ends_request(self, msg: Msg) -> bool:
        headers = msg.headers or {}
        status = headers.get(_STATUS, "")
        description = headers.get(_DESCRIPTION, "")
        if status == "503" or (status == "409" and "consumer deleted" in description.lower()):
            raise ConsumerGoneError(
                f"the JetStream consumer {self.durable} of stream {self.stream} is gone "
                f"({status} {description or 'no responders'})".rstrip()
            )
        return status != "100"  # 100: an idle heartbeat; 404, 408, 409: this request is over

    async def consumer_info(self) -> ConsumerInfo:
        return await self.js.consumer_info(self.stream, self.durable)

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._sub.unsubscribe()
            self._sub = None
