"""The span path: fetch from ``CHOREO_SPANS``, decode, write a segment, then ack.

Two coroutines joined by a small queue. The fetcher pulls batches of messages
and starts decoding them (``DecodePool``); the flusher gathers decoded spans and
writes one segment when ``flush_rows`` are buffered or the oldest is
``flush_interval`` old, and acks those messages only once the segment is durable.
The queue's bound is the backpressure: while a write is failing (disk full, store
unwritable) nothing more is fetched, the held messages are kept in progress so
JetStream does not redeliver them, and the write is retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

import duckdb
import nats.errors
import pyarrow as pa
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from collector.decode_pool import DecodePool
from collector.decoding import DecodedBatch, Payload
from collector.segment_writer import SegmentWriter
from collector.streams import SPANS_DURABLE, consumer_config
from instrumentation import wire

log = logging.getLogger(__name__)

QUEUED_FETCHES = 4


@dataclass
class IngestStats:
    """Counters the collector logs periodically."""

    spans: int = 0
    rejected: int = 0
    messages: int = 0
    segments: int = 0
    write_failures: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass
class _Fetched:
    messages: list[Msg]
    decoding: list[asyncio.Future[DecodedBatch]]


def header(msg: Msg, name: str) -> str | None:
    """A header value, by case-insensitive name."""
    headers = msg.headers or {}
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


class SpanIngest:
    """Consumes ``CHOREO_SPANS`` into span segments, acking only what is durable."""

    def __init__(
        self,
        *,
        js: JetStreamContext,
        writer: SegmentWriter,
        pool: DecodePool,
        flush_rows: int,
        flush_interval: float,
        fetch_batch: int = 256,
        ack_wait: float = 30.0,
        max_backoff: float = 30.0,
        durable: str = SPANS_DURABLE,
        stats: IngestStats | None = None,
    ) -> None:
        self.js = js
        self.writer = writer
        self.pool = pool
        self.flush_rows = flush_rows
        self.flush_interval = flush_interval
        self.fetch_batch = fetch_batch
        self.ack_wait = ack_wait
        self.max_backoff = max_backoff
        self.durable = durable
        self.stats = stats or IngestStats()
        self.subscription: JetStreamContext.PullSubscription | None = None

    async def subscribe(self) -> None:
        self.subscription = await self.js.pull_subscribe(
            wire.SPANS_SUBJECTS,
            durable=self.durable,
            stream=wire.SPANS_STREAM,
            config=consumer_config(
                durable=self.durable, ack_wait=self.ack_wait, max_ack_pending=20_000
            ),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then write and ack what was fetched."""
        if self.subscription is None:
            await self.subscribe()
        queue: asyncio.Queue[_Fetched | None] = asyncio.Queue(maxsize=QUEUED_FETCHES)
        fetcher = asyncio.create_task(self._fetch_loop(queue, stop), name="span-fetcher")
        try:
            await self._flush_loop(queue, stop)
        finally:
            if not fetcher.done():
                fetcher.cancel()
            await asyncio.gather(fetcher, return_exceptions=True)
        if not fetcher.cancelled() and fetcher.exception() is not None:
            raise fetcher.exception()  # type: ignore[misc]

    async def _fetch_loop(self, queue: asyncio.Queue[_Fetched | None], stop: asyncio.Event) -> None:
        assert self.subscription is not None
        try:
            while not stop.is_set():
                try:
                    messages = await self.subscription.fetch(
                        batch=self.fetch_batch, timeout=max(0.05, min(1.0, self.flush_interval))
                    )
                except (nats.errors.TimeoutError, TimeoutError):  # nats-py raises either
                    continue
                except (nats.errors.ConnectionClosedError, nats.errors.Error) as e:
                    log.warning("fetching spans failed (%s); retrying", e)
                    await asyncio.sleep(0.5)
                    continue
                payloads = [
                    Payload(
                        data=m.data,
                        content_type=header(m, wire.CONTENT_TYPE),
                        source=f"nats:{m.subject}",
                        exporter_id=header(m, wire.EXPORTER_ID),
                    )
                    for m in messages
                ]
                await queue.put(_Fetched(messages, self.pool.decode(payloads)))
        finally:
            await queue.put(None)

    async def _flush_loop(self, queue: asyncio.Queue[_Fetched | None], stop: asyncio.Event) -> None:
        messages: list[Msg] = []
        spans: list[pa.Table] = []
        rejected: list[pa.Table] = []
        rows = 0
        oldest = 0.0
        while True:
            timeout = (
                None if not messages else max(0.0, oldest + self.flush_interval - time.monotonic())
            )
            try:
                item = await asyncio.wait_for(queue.get(), timeout)
            except TimeoutError:
                item = _Fetched([], [])  # nothing new: flush on age
            if item is None:
                if messages:
                    await self._flush(messages, spans, rejected, stop=stop)
                return
            if item.messages:
                if not messages:
                    oldest = time.monotonic()
                messages += item.messages
                for decoded in await asyncio.gather(*item.decoding):
                    spans.append(decoded.spans)
                    rejected.append(decoded.rejected)
                    rows += decoded.span_count
            if messages and (
                rows >= self.flush_rows or time.monotonic() - oldest >= self.flush_interval
            ):
                await self._flush(messages, spans, rejected, stop=stop)
                messages, spans, rejected, rows = [], [], [], 0

    async def _flush(
        self,
        messages: list[Msg],
        spans: list[pa.Table],
        rejected: list[pa.Table],
        *,
        stop: asyncio.Event,
    ) -> None:
        span_table = pa.concat_tables(spans) if spans else None
        rejected_table = pa.concat_tables(rejected) if rejected else None
        if not await self._write_until_durable(span_table, rejected_table, messages, stop=stop):
            return  # stopping with the store unwritable: JetStream redelivers them later
        for msg in messages:
            try:
                await msg.ack()
            except nats.errors.Error as e:  # redelivered later; the views dedupe
                log.warning("ack failed (%s); the batch will be redelivered and deduplicated", e)
                break
        self.stats.messages += len(messages)
        self.stats.spans += span_table.num_rows if span_table is not None else 0
        self.stats.rejected += rejected_table.num_rows if rejected_table is not None else 0

    async def _write_until_durable(
        self,
        span_table: pa.Table | None,
        rejected_table: pa.Table | None,
        messages: list[Msg],
        *,
        stop: asyncio.Event,
    ) -> bool:
        backoff = 0.2
        last_progress = time.monotonic()
        while True:
            try:
                if span_table is not None and span_table.num_rows:
                    await asyncio.to_thread(self.writer.write, "spans", span_table)
                    self.stats.segments += 1
                    span_table = None  # written; a retry writes only what is left
                if rejected_table is not None and rejected_table.num_rows:
                    await asyncio.to_thread(self.writer.write, "rejected", rejected_table)
                    rejected_table = None
                return True
            except (OSError, duckdb.Error) as e:
                self.stats.write_failures += 1
                log.error(
                    "cannot write a segment to the store at %s: %s. %d message(s) stay "
                    "unacked; retrying in %.1fs. Free disk space or fix the directory's "
                    "permissions; nothing is lost meanwhile.",
                    self.writer.layout.root, e, len(messages), backoff,
                )  # fmt: skip
            if stop.is_set():
                log.error("stopping with %d message(s) unwritten and unacked", len(messages))
                return False
            if time.monotonic() - last_progress > self.ack_wait / 3:
                await _keep_in_progress(messages)
                last_progress = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(self.max_backoff, backoff * 2)

    async def lag(self) -> int | None:
        """Messages the shared consumer has not yet delivered or not yet seen acked."""
        if self.subscription is None:
            return None
        try:
            info = await self.subscription.consumer_info()
        except (nats.errors.Error, TimeoutError):
            return None
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


async def _keep_in_progress(messages: list[Msg]) -> None:
    for msg in messages:
        try:
            await msg.in_progress()
        except nats.errors.Error:
            return
