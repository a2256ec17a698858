"""The NATS span exporter: ended spans, in batches of hundreds, onto ``CHOREO_SPANS``.

It is a ``SpanProcessor`` rather than an SDK ``SpanExporter`` behind the SDK's
``BatchSpanProcessor``, because it must size and count its queue: the SDK's
2048-span queue dropped 29% of a 50k-span burst without telling anyone.

The host thread pays one ``deque.append`` per span. Everything else
(encoding, publishing, waiting for JetStream's ack, reconnecting) happens on the
exporter's own thread, with its own event loop and its own NATS connection, so a
slow or absent NATS never blocks the host's loop and exporting never makes spans
about exporting. While NATS is down the queue holds up to ``max_queue_spans``;
beyond that spans are dropped and counted, and every batch carries the running
count in ``Choreo-Spans-Dropped`` so the collector sees lost telemetry as a gap.
A forked child process gets a thread, a connection and an exporter id of its own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from instrumentation import wire
from instrumentation.batch_split import encode_within_limit
from instrumentation.columnar_encoding import encode_columnar_batch
from instrumentation.errors import ConfigurationError
from instrumentation.light_span import LightSpan
from instrumentation.nats_connect_options import RECONNECTING, connect_options, connect_unless
from instrumentation.nats_shutdown import close_connection, close_loop
from instrumentation.otlp_encoding import encode_otlp_batch
from instrumentation.spans_stream import ensure_spans_stream
from instrumentation.throttled_log import Outage

log = logging.getLogger(__name__)

Encoding = Literal["columnar", "otlp"]

_ENCODERS: dict[str, tuple[str, Callable[[Sequence[ReadableSpan]], bytes]]] = {
    "columnar": (wire.CONTENT_TYPE_COLUMNAR, encode_columnar_batch),
    "otlp": (wire.CONTENT_TYPE_OTLP_PROTOBUF, encode_otlp_batch),
}

# 50k spans covers the burst that lost 29% with the SDK default, and holds about a
# minute of a busy agent's spans while NATS restarts (roughly 1-2 KB each in memory).
DEFAULT_MAX_QUEUE_SPANS = 50_000
DEFAULT_MAX_BATCH_SPANS = 512
# while publishing keeps failing, a warning at most this often (the retries go on)
WARN_EVERY_S = 30.0


@dataclass(frozen=True)
class ExporterStats:
    """Totals since the exporter started."""

    exporter_id: str
    spans_exported: int
    spans_dropped: int
    spans_queued: int
    batches_sent: int
    export_failures: int


class NatsSpanProcessor(SpanProcessor):
    """Publish ended spans to ``choreo.spans.<service>`` and wait for JetStream's ack."""

    def __init__(
        self,
        *,
        service_name: str,
        nats_url: str,
        nats_options: Mapping[str, Any] | None = None,
        encoding: Encoding = "columnar",
        max_queue_spans: int = DEFAULT_MAX_QUEUE_SPANS,
        max_batch_spans: int = DEFAULT_MAX_BATCH_SPANS,
        schedule_delay: float = 0.5,
        ack_timeout: float = 5.0,
        retry_delay: float = 0.5,
        exporter_id: str | None = None,
    ) -> None:
        if encoding not in _ENCODERS:
            raise ConfigurationError(
                setting="encoding", value=encoding, fix="use 'columnar' or 'otlp'"
            )
        if max_batch_spans < 1 or max_queue_spans < max_batch_spans:
            raise ConfigurationError(
                setting="max_queue_spans",
                value=max_queue_spans,
                fix=f"make it at least max_batch_spans ({max_batch_spans}), which must be >= 1",
            )
        self.service_name = service_name
        self.subject = wire.SPANS_SUBJECT_PREFIX + service_name
        self.exporter_id = exporter_id or uuid.uuid4().hex[:16]
        self._nats_url = nats_url
        # the user's options win over ours (an error_cb, a timeout, servers of a cluster)
        self._connect_options = connect_options(
            setting="nats_options",
            defaults={
                "servers": nats_url,
                "name": f"choreoscope-exporter-{service_name}",
                **RECONNECTING,
                "error_cb": self._on_nats_error,
            },
            user=nats_options,
        )
        self._content_type, self._encode = _ENCODERS[encoding]
        self._max_queue = max_queue_spans
        self._max_batch = max_batch_spans
        self._schedule_delay = schedule_delay
        self._ack_timeout = ack_timeout
        self._retry_delay = retry_delay

        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._lock = threading.Lock()
        self._dropped = 0
        self._exported = 0
        self._batches = 0
        self._failures = 0
        self._in_flight = 0
        # exporter thread only: since when publishing fails, and its warning's pace
        self._outage = Outage(WARN_EVERY_S, logger=log)
        self._seq = itertools.count(1)
        self._closed = False
        self._abandon = False
        self._flush_waiters: list[threading.Event] = []

        self._nc: Any = None
        self._stream_ready = False
        self._start_thread()
        reinit = weakref.WeakMethod(self._at_fork_reinit)
        os.register_at_fork(after_in_child=lambda: (method := reinit()) and method())

    def _start_thread(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._wake = asyncio.Event()
        self._thread = threading.Thread(
            target=self._thread_main,
            name=f"choreoscope-exporter-{self.service_name}",
            daemon=True,
        )
        self._thread.start()

    def _at_fork_reinit(self) -> None:
        """In a forked child (a worker pool, a pre-forking server), where the parent's
        thread did not come along: spans ended here go out on a thread and connection
        of the child's own, as a new exporter (the parent's id and batch numbers would
        make JetStream drop the child's batches as duplicates of the parent's). Spans
        queued in the parent are the parent's to send; the counters start again."""
        self.exporter_id = uuid.uuid4().hex[:16]
        self._queue = collections.deque()
        self._lock = threading.Lock()
        self._dropped = self._exported = self._batches = self._failures = self._in_flight = 0
        self._outage = Outage(WARN_EVERY_S, logger=log)
        self._seq = itertools.count(1)
        self._abandon = False
        self._flush_waiters = []
        self._nc = None  # the parent's, bound to its loop
        self._stream_ready = False
        if not self._closed:
            self._start_thread()

    # --- host side -----------------------------------------------------------
    def on_end(self, span: ReadableSpan) -> None:
        if type(span) is not LightSpan and not span.context.trace_flags.sampled:
            return  # (a light span only ends into processors when it is sampled)
        # No lock on the way in: deque.append is atomic, only the exporter thread
        # pops, and the bound may be overshot by a span per concurrent host thread.
        queue = self._queue
        if self._closed or len(queue) >= self._max_queue:
            with self._lock:
                self._dropped += 1
            return
        queue.append(span)
        if len(queue) == self._max_batch:
            self._poke()

    @property
    def closed(self) -> bool:
        """``shutdown()`` was called: spans ended from now on are dropped."""
        return self._closed

    def stats(self) -> ExporterStats:
        with self._lock:
            return ExporterStats(
                exporter_id=self.exporter_id,
                spans_exported=self._exported,
                spans_dropped=self._dropped,
                spans_queued=len(self._queue) + self._in_flight,
                batches_sent=self._batches,
                export_failures=self._failures,
            )

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait until every span ended so far is acked by JetStream (or the timeout)."""
        if not self._thread.is_alive():
            return not self._queue
        done = threading.Event()
        with self._lock:
            self._flush_waiters.append(done)
        self._poke()
        flushed = done.wait(timeout_millis / 1000)
        if not flushed:
            with self._lock, contextlib.suppress(ValueError):
                self._flush_waiters.remove(done)
        return flushed

    def shutdown(self, timeout: float = 10.0, *, report_loss: bool = True) -> None:
        """Flush the queue (up to ``timeout`` s), then stop; what is left counts as dropped,
        and is logged unless ``report_loss`` is false (the caller tells it)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._poke()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandon = True
            self._poke()
            self._thread.join(2.0)
        with self._lock:
            left = len(self._queue) + self._in_flight
            if left and report_loss:
                log.warning(
                    "span exporter %s stopped with %d spans not exported: NATS at %s did not "
                    "accept them in time",
                    self.exporter_id,
                    left,
                    self._nats_url,
                )
            self._dropped += left
            self._queue.clear()
            self._in_flight = 0

    def _poke(self) -> None:
        with contextlib.suppress(RuntimeError):  # loop already closed
            self._loop.call_soon_threadsafe(self._wake.set)

    # --- exporter thread -----------------------------------------------------------
    def _thread_main(self) -> None:
        try:
            self._loop.run_until_complete(self._run())
        finally:
            close_loop(self._loop)

    def _take_batch(self) -> list[ReadableSpan]:
        with self._lock:
            count = min(self._max_batch, len(self._queue))
            batch = [self._queue.popleft() for _ in range(count)]
            self._in_flight = count
            return batch

    def _release_flush_waiters(self) -> None:
        with self._lock:
            if self._queue or self._in_flight:
                return
            waiters, self._flush_waiters = self._flush_waiters, []
        for waiter in waiters:
            waiter.set()

    def _batch_due(self, last_sent: float) -> bool:
        """A full batch, a flush or shutdown waiting, or spans older than schedule_delay."""
        with self._lock:
            queued = len(self._queue)
            waiting = bool(self._flush_waiters)
        if not queued:
            return False
        return (
            queued >= self._max_batch
            or waiting
            or self._closed
            or time.monotonic() - last_sent >= self._schedule_delay
        )

    async def _run(self) -> None:
        # Under a steady trickle, sending whatever is queued as soon as the previous
        # batch is acked would make batches of a few spans; so a partial batch waits
        # until schedule_delay has passed since the last send (or a flush asks).
        last_sent = time.monotonic()
        try:
            while not self._abandon:
                if self._batch_due(last_sent):
                    await self._export(self._take_batch())
                    last_sent = time.monotonic()
                    continue
                self._release_flush_waiters()
                if self._closed and not self._queue:
                    break
                self._wake.clear()
                # nothing queued: a first span does not poke, so look again after
                # schedule_delay, not at once (an idle exporter polled 1000 times a second)
                since = time.monotonic() - last_sent if self._queue else 0.0
                wait = max(self._schedule_delay - since, 0.001)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            if self._nc is not None:
                with contextlib.suppress(Exception):
                    # nats-py's close() stops half way when NATS is gone, leaving
                    # tasks that asyncio reports with tracebacks once this loop closes
                    # (its spans were acked already: a short flush, so the close fits)
                    await asyncio.wait_for(close_connection(self._nc, flush_timeout=0.5), 2.0)

    async def _export(self, spans: list[ReadableSpan]) -> None:
        limit = self._nc.max_payload if self._nc is not None else 1024 * 1024
        parts = encode_within_limit(
            spans, encode=self._encode, limit=limit, unsendable=self._count_unsendable
        )
        for payload, count in parts:
            headers = None
            while not self._abandon:
                try:
                    nc = await self._connection()
                    if headers is None:
                        headers = self._headers(next(self._seq))
                    await nc.jetstream().publish(
                        self.subject, payload, headers=headers, timeout=self._ack_timeout
                    )
                    with self._lock:
                        self._exported += count
                        self._batches += 1
                        self._in_flight -= count
                    self._published_again()
                    break
                except Exception as exc:  # never let exporting hurt the host
                    with self._lock:
                        self._failures += 1
                    self._publish_failed(exc, count)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._abandoned(), self._retry_delay)
        with self._lock:  # spans still in hand here were given up on at shutdown
            self._dropped += self._in_flight
            self._in_flight = 0

    def _publish_failed(self, exc: Exception, count: int) -> None:
        """Warn of a failed publish: at once, then at most every ``WARN_EVERY_S`` (it is
        retried every ``retry_delay``: a NATS without JetStream, or a permission
        missing, would fill the host's log)."""
        self._outage.failing(
            f"span exporter {self.exporter_id} could not publish {count} spans to "
            f"{self._nats_url}; retrying every {self._retry_delay:g}s",
            f"{type(exc).__name__}: {exc}",
        )

    def _published_again(self) -> None:
        lasted = self._outage.over()
        if lasted is not None:
            log.info(
                "span exporter %s publishes to %s again, after %.0fs of failures",
                self.exporter_id, self._nats_url, lasted,
            )  # fmt: skip

    async def _abandoned(self) -> None:
        while not self._abandon:
            self._wake.clear()
            await self._wake.wait()

    def _headers(self, seq: int) -> dict[str, str]:
        with self._lock:
            dropped = self._dropped
        return {
            wire.EXPORTER_ID: self.exporter_id,
            wire.BATCH_SEQ: str(seq),
            wire.SPANS_DROPPED: str(dropped),
            wire.CONTENT_TYPE: self._content_type,
            # a retried batch whose ack was lost is deduplicated by JetStream
            wire.MSG_ID: f"{self.exporter_id}-{seq}",
        }

    def _count_unsendable(self, count: int) -> None:
        with self._lock:
            self._dropped += count
            self._in_flight -= count

    async def _connection(self) -> Any:
        if self._nc is None or self._nc.is_closed:  # shutdown may give up on connecting
            self._nc = await connect_unless(self._abandoned(), options=self._connect_options)
            self._stream_ready = False
        if not self._stream_ready:
            await ensure_spans_stream(self._nc.jetstream())
            self._stream_ready = True
        return self._nc

    async def _on_nats_error(self, exc: Exception) -> None:
        log.debug("span exporter %s: NATS error %s", self.exporter_id, exc)
