"""Keeping a JetStream message from being redelivered while its handler still runs.

JetStream delivers a message again when it is not acked within ``ack_wait``: a
handler calling a model for 45 s would see its message redelivered mid-step (the
default ``ack_wait`` is 30 s) and processed twice, concurrently. While an Agent's
handler runs, its message gets an ``in_progress`` ack (``+WPI``, which restarts
JetStream's ack timer) every quarter of ``ack_wait``, the first between an eighth
and three eighths of it after the handler started (a busy event loop or a slow
round trip still leaves them in time), until the handler returns, raises or is
cancelled: none is sent after that.

A handler that hangs must not hold its message forever: keep-alives stop so that
JetStream delivers the message again ``max_processing`` seconds after the handler
started (at most a quarter of ``ack_wait`` later), or ``ack_wait`` after when that
is longer, as no keep-alive is sent then. The hung handler is not stopped; the new
delivery runs beside it, and a throttled warning says so.

Keep-alives record no ``settle`` span (one per ``ack_wait / 4`` of every long
step, saying nothing the process span does not): the process span's
``choreo.keep_alive.count`` says how many were sent. A keep-alive that cannot be
sent (NATS lost) is logged at a throttled pace and never fails the handler.

A timer or a task per message would cost as much as a span, so one timer per
Agent sweeps the messages in flight: a message costs a set insertion and removal.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from opentelemetry.trace import Span

from instrumentation import semconv
from instrumentation.errors import ConfigurationError
from instrumentation.throttled_log import ThrottledWarning

log = logging.getLogger(__name__)

DEFAULT_MAX_PROCESSING = 600.0
_WARNING_INTERVAL = 60.0


class KeepAlive:
    """Keeps an Agent's messages alive while their handlers run: ``async with
    keep_alive.around(msg, process_span):`` around each handler call."""

    def __init__(self, *, service: str, ack_wait: float, max_processing: float) -> None:
        if not ack_wait > 0 or not max_processing > 0:
            raise ConfigurationError(
                setting="ack_wait/max_processing",
                value=(ack_wait, max_processing),
                fix="give ack_wait and max_processing in seconds, both > 0",
            )
        self.service = service
        self.ack_wait = ack_wait
        self.max_processing = max_processing
        self.period = ack_wait / 4
        # keep-alives are sent until this long after the handler started; JetStream
        # redelivers ack_wait after the last one
        self.hold = max_processing - ack_wait
        self.send_failed = ThrottledWarning(_WARNING_INTERVAL, logger=log)
        self.ran_out = ThrottledWarning(_WARNING_INTERVAL, logger=log)
        self._kept: set[KeptAlive] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._sweeping: asyncio.Task[None] | None = None

    def around(self, msg: Any, span: Span) -> KeptAlive:
        return KeptAlive(self, msg, span)

    def _keep(self, kept: KeptAlive) -> None:
        if self.hold <= 0:
            return  # ack_wait alone covers max_processing
        self._kept.add(kept)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.period, self._due)

    def _release(self, kept: KeptAlive) -> None:
        self._kept.discard(kept)

    def _due(self) -> None:
        self._timer = None
        if not self._kept:
            return  # started again by the next message
        loop = asyncio.get_running_loop()
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = loop.create_task(self._sweep(loop.time()))
        self._timer = loop.call_later(self.period, self._due)

    async def _sweep(self, now: float) -> None:
        for kept in list(self._kept):
            # checked before each send: a handler ends while an earlier send waits,
            # and nothing waits between this check and the +WPI being queued
            if kept not in self._kept:
                continue
            running = now - kept.started
            if running < self.period / 2:
                continue  # new since the last sweep: not due yet
            if running >= self.hold + self.period:  # the last one went out at hold
                self._kept.discard(kept)
                self._warn_ran_out(kept)
                continue
            try:
                await kept.msg.in_progress()
            except Exception as exc:
                self.send_failed(
                    f"{self.service}: could not tell JetStream that a {kept.msg.subject} "
                    f"message is still being handled (it is delivered again if the "
                    f"handler runs past ack_wait={self.ack_wait:g} s)",
                    exc,
                )
            else:
                kept.sent += 1

    def _warn_ran_out(self, kept: KeptAlive) -> None:
        self.ran_out(
            f"{self.service}: a {kept.msg.subject} handler has run past "
            f"max_processing={self.max_processing:g} s less ack_wait; its message is no "
            f"longer kept, so JetStream delivers it again beside the handler if that "
            f"still runs {self.ack_wait:g} s after the last keep-alive",
            "pass a larger Agent(max_processing=...) if such steps are not hung",
        )


class KeptAlive:
    """One message kept alive while its handler runs."""

    __slots__ = ("_policy", "_span", "msg", "sent", "started")

    def __init__(self, policy: KeepAlive, msg: Any, span: Span) -> None:
        self._policy = policy
        self._span = span
        self.msg = msg
        self.sent = 0
        self.started = 0.0

    async def __aenter__(self) -> KeptAlive:
        self.started = asyncio.get_running_loop().time()
        self._policy._keep(self)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._policy._release(self)
        if self.sent:
            self._span.set_attribute(semconv.CHOREO_KEEP_ALIVE_COUNT, self.sent)
