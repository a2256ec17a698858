"""A durable pull consumer that keeps one pull request open instead of fetching.

nats-py's ``fetch`` makes a round of requests per call and returns after the
first message of a lingering pull, so an Agent fetching under load paid a request
per one or two messages. Like the newer NATS clients' ``consume``, this keeps a
single pull request outstanding for as many messages as the Agent has free
slots, receives them on one inbox subscription, and asks again when the request
is fulfilled or expires. It never asks for more than the free slots, so the
Agent's in-flight bound holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_REQUEST_DONE = {"404", "408", "409"}  # no messages, request expired, conflict
_HEARTBEAT = "100"


class PullConsumer:
    """Delivers the messages of durable consumer ``durable`` on ``stream`` to ``deliver``."""

    def __init__(
        self,
        nc: Any,
        *,
        stream: str,
        durable: str,
        deliver: Callable[[Any], None],
        free_slots: Callable[[], int],
        slot_freed: asyncio.Event,
        max_batch: int,
        expires: float,
        api_prefix: str = "$JS.API",
    ) -> None:
        self._nc = nc
        self._next_subject = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._deliver = deliver
        self._free_slots = free_slots
        self._slot_freed = slot_freed
        self._max_batch = max_batch
        self._expires = expires
        self._inbox = nc.new_inbox()
        self._request_ids = itertools.count()
        self._current: str | None = None
        self._remaining = 0
        self._request_done = asyncio.Event()
        self._sub: Any = None
        self._stopping = False
        self._conflicted = False

    async def run(self) -> None:
        """Ask for messages until ``stop()``; returns once the open request is over."""
        self._sub = await self._nc.subscribe(self._inbox + ".*", cb=self._on_message)
        try:
            while not self._stopping:
                free = self._free_slots()
                if free <= 0:
                    self._slot_freed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._slot_freed.wait(), self._expires)
                    continue
                await self._pull(min(free, self._max_batch))
        finally:
            # drain, not unsubscribe: messages already on their way are still handed
            # over (an unsubscribed inbox would leave them to redeliver after ack_wait),
            # and the server stops filling a request whose inbox lost interest
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._sub.drain(), 5)

    def stop(self) -> None:
        """Ask for nothing more; the open request is abandoned at once."""
        self._stopping = True
        self._request_done.set()

    @property
    def outstanding(self) -> int:
        """Messages the open pull request may still bring (they need free slots)."""
        return max(self._remaining, 0)

    async def _pull(self, batch: int) -> None:
        request_id = str(next(self._request_ids))
        self._current = request_id
        self._remaining = batch
        self._request_done.clear()
        request = {"batch": batch, "expires": int(self._expires * 1e9)}
        try:
            await self._nc.publish(
                self._next_subject,
                json.dumps(request).encode(),
                reply=f"{self._inbox}.{request_id}",
            )
        except Exception as exc:  # disconnected: nats-py reconnects, we ask again
            log.debug("pull request on %s failed: %s", self._next_subject, exc)
            await asyncio.sleep(min(self._expires, 0.5))
            return
        # the server ends the request by fulfilling it or with a status; a request
        # lost to a reconnect is given up a little after it would have expired
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._request_done.wait(), self._expires + 2)
        self._remaining = 0  # the request is over: nothing more is owed to it
        if self._conflicted:  # e.g. too many waiting pulls: do not spin
            self._conflicted = False
            await asyncio.sleep(min(self._expires, 0.5))

    async def _on_message(self, msg: Any) -> None:
        if not msg.data and msg.headers and "Status" in msg.headers:
            # a status comes on the request's own reply subject; messages keep their
            # original subject, so they count against the open request
            request_id = msg.subject.rpartition(".")[2]
            status = msg.headers["Status"]
            if status == _HEARTBEAT:
                return
            if status == "409":
                self._conflicted = True
                log.info(
                    "pull request on %s: %s", self._next_subject, msg.headers.get("Description")
                )
            if status in _REQUEST_DONE and request_id == self._current:
                self._request_done.set()
            return
        self._remaining -= 1
        if self._remaining == 0:
            self._request_done.set()
        self._deliver(msg)
