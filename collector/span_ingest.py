"""The span path: fetch from ``CHOREO_SPANS``, decode and write a segment, then ack.

The fetch loop buffers messages until about ``flush_rows`` spans are held or the
oldest is ``flush_interval`` old, then hands the group to the ``DecodePool``
(split over its workers, each decoding and writing one segment) and goes on
fetching. A group's messages are acked only once all its segments are durable.
At most ``max_inflight`` groups are out at once: that bound is the backpressure.
While writes fail (disk full, store unwritable) the group is retried with
backoff, its messages kept in progress so JetStream does not redeliver them,
and nothing more is fetched. A consumer found gone (its stream deleted, or
JetStream's storage lost) is created again, stream first, and consuming goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from collector.decode_pool import DecodePool, StoreWriteError, WrittenBatch
from collector.decoding import Payload
from collector.durable_pull import ConsumerGoneError, DurablePull
from collector.full_disk import FullDiskNotice
from collector.rejects import MAX_SPAN_ROWS_PER_MESSAGE
from collector.span_batch import fits_int64
from collector.streams import SPANS_DURABLE, consumer_config, stream_seq
from instrumentation import wire
from instrumentation.throttled_log import ThrottledWarning

log = logging.getLogger(__name__)

MIN_MESSAGES_PER_TASK = 8
FLUSH_BYTES = 32 * 2**20
"""A group is also full at this many payload bytes, before the span count is known."""
TASK_BYTES = 8 * 2**20
"""Payload bytes per decode task: bounds a worker's memory (about 40x this at peak)."""


@dataclass
class IngestStats:
    """Counters the collector logs periodically."""

    spans: int = 0
    rejected: int = 0
    messages: int = 0
    segments: int = 0
    write_failures: int = 0
    started: float = field(default_factory=time.monotonic)


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


def payload_of(msg: Msg) -> Payload:
    bad: list[tuple[str, str, str]] = []
    return Payload(
        data=msg.data,
        content_type=header(msg, wire.CONTENT_TYPE),
        source=f"nats:{msg.subject}",
        exporter_id=_text_header(msg, wire.EXPORTER_ID, bad),
        batch_seq=_int64_header(msg, wire.BATCH_SEQ, bad),
        spans_dropped=_int64_header(msg, wire.SPANS_DROPPED, bad),
        bad_headers=tuple(bad),
        stream_seq=stream_seq(msg),
    )


def _text_header(msg: Msg, name: str, bad: list[tuple[str, str, str]]) -> str | None:
    """The header's text; absent, or noted in ``bad``, when it was not valid UTF-8.

    nats-py reads header values with ``errors="replace"``: undecodable bytes arrive as
    U+FFFD, the original bytes are gone. Stored so, two exporters whose ids differ only
    in those bytes read as one (a hole in "its" batch numbers that is none)."""
    text = header(msg, name)
    if text is not None and "\ufffd" in text:
        bad.append((name, text, "is not valid UTF-8 (its undecodable bytes read as U+FFFD)"))
        return None
    return text


def _int64_header(msg: Msg, name: str, bad: list[tuple[str, str, str]]) -> int | None:
    """The header as an int64; absent, or noted in ``bad``, when it is not one."""
    text = header(msg, name)
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not fits_int64(value):
        bad.append((name, text, "is not an integer from -2**63 to 2**63-1"))
        return None
    return value


class SpanIngest:
    """Consumes ``CHOREO_SPANS`` into span segments, acking only what is durable."""

    def __init__(
        self,
        *,
        nc: Client,
        js: JetStreamContext,
        pool: DecodePool,
        flush_rows: int,
        flush_interval: float,
        fetch_batch: int = 64,
        ack_wait: float = 30.0,
        max_backoff: float = 30.0,
        max_inflight: int = 2,
        durable: str = SPANS_DURABLE,
        stats: IngestStats | None = None,
        create_stream: Callable[[], Awaitable[bool]] | None = None,
        error_log_interval: float = 10.0,
    ) -> None:
        self.js = js
        self.pool = pool
        self.flush_rows = flush_rows
        self.flush_interval = flush_interval
        self.fetch_batch = fetch_batch
        self.ack_wait = ack_wait
        self.max_backoff = max_backoff
        self.max_inflight = max_inflight
        self.durable = durable
        self.stats = stats or IngestStats()
        self.create_stream = create_stream
        """Creates ``CHOREO_SPANS`` unless it exists; True if it had to."""
        self.subscription = DurablePull(
            nc=nc,
            js=js,
            stream=wire.SPANS_STREAM,
            config=consumer_config(durable=durable, ack_wait=ack_wait, max_ack_pending=20_000),
        )
        self._subscribed = False
        self._warn = ThrottledWarning(error_log_interval, logger=log)
        self._warn_summarized = ThrottledWarning(error_log_interval, logger=log)
        self._spans_per_message = 64.0  # learned from what was decoded
        # a full disk refuses every segment alike: said once, then every 10 min
        self._full_disk = FullDiskNotice(
            root=pool.layout.root,
            doing="span ingest",
            retry_every=max_backoff,
            keeping="the span messages it could not store stay unacknowledged in "
            "JetStream (told it is still working on them), so nothing is lost",
        )

    async def subscribe(self) -> None:
        await self.subscription.ensure_consumer()
        self._subscribed = True

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then write and ack what was fetched."""
        if not self._subscribed:
            await self.subscribe()
        inflight: set[asyncio.Task[None]] = set()
        buffer: list[Msg] = []
        oldest = 0.0
        try:
            while not stop.is_set():
                age_left = oldest + self.flush_interval - time.monotonic() if buffer else 1.0
                buffer_was_empty = not buffer
                buffer += await self._fetch(timeout=max(0.05, min(1.0, age_left)))
                if buffer and buffer_was_empty:
                    oldest = time.monotonic()
                full = (
                    len(buffer) * self._spans_per_message >= self.flush_rows
                    or sum(len(m.data) for m in buffer) >= FLUSH_BYTES
                )
                if buffer and (full or time.monotonic() - oldest >= self.flush_interval):
                    while len(inflight) >= self.max_inflight:
                        await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                        _reap(inflight)
                    inflight.add(asyncio.create_task(self._store(buffer, stop)))
                    buffer = []
            if buffer:
                inflight.add(asyncio.create_task(self._store(buffer, stop)))
        finally:
            if inflight:
                await asyncio.wait(inflight)
            _reap(inflight)

    async def _fetch(self, *, timeout: float) -> list[Msg]:
        try:
            messages = await self.subscription.fetch(batch=self.fetch_batch, timeout=timeout)
        except ConsumerGoneError as e:
            self._warn("fetching spans failed; creating the stream and consumer again", e)
            await self.subscription.create_again(
                create_stream=self.create_stream, held="spans", warn=self._warn
            )
            return []
        except (nats.errors.Error, TimeoutError) as e:
            self._warn("fetching spans failed; retrying", e)
            await asyncio.sleep(0.5)
            return []
        self._warn.reset()
        return messages

    async def _store(self, messages: list[Msg], stop: asyncio.Event) -> None:
        started = time.perf_counter()
        payloads = [payload_of(m) for m in messages]
        chunks = _split(payloads, self.pool.parallelism)
        results = await asyncio.gather(*(self._write_chunk(c, messages, stop) for c in chunks))
        log.debug(
            "stored %d messages in %d segment task(s) in %.3fs",
            len(messages), len(chunks), time.perf_counter() - started,
        )  # fmt: skip
        if any(r is None for r in results):
            return  # stopping with the store unwritable: JetStream redelivers them later
        for msg in messages:
            try:
                await msg.ack()
            except nats.errors.Error as e:  # redelivered later; the views dedupe
                log.warning("ack failed (%s); the batch will be redelivered and deduplicated", e)
                break
        written = [r for r in results if r is not None]
        for summary in (s for r in written for s in r.summarized):
            self._warn_summarized(
                f"a span message had more bad spans than the {MAX_SPAN_ROWS_PER_MESSAGE} "
                "that rejected lists one by one",
                summary,
            )
        spans = sum(r.spans for r in written)
        self.stats.messages += len(messages)
        self.stats.spans += spans
        self.stats.rejected += sum(r.rejected for r in written)
        self.stats.segments += sum(1 for r in written if r.spans)
        received = sum(r.received_spans for r in written)
        self._spans_per_message = max(1.0, received / len(messages))

    async def _write_chunk(
        self, payloads: Sequence[Payload], messages: list[Msg], stop: asyncio.Event
    ) -> WrittenBatch | None:
        backoff = 0.2
        last_progress = time.monotonic()
        while True:
            generation = self.pool.generation
            try:
                written = await self.pool.submit(payloads)
                self._full_disk.passed()
                return written
            except BrokenExecutor as e:
                log.error("a decode worker died (%s); starting new workers and retrying", e)
                self.pool.replace_broken(generation)
                continue
            except StoreWriteError as e:
                self.stats.write_failures += 1
                if e.full_disk is not None:  # said once, then every 10 min, not each try
                    self._full_disk.failed(step="span segments", path=Path(e.full_disk))
                else:
                    log.error(
                        "cannot write a segment to the store at %s: %s. %d message(s) "
                        "stay unacked; retrying in %.1fs. Free disk space or fix the "
                        "directory's permissions; nothing is lost meanwhile.",
                        self.pool.layout.root, e, len(messages), backoff,
                    )  # fmt: skip
            if stop.is_set():
                log.error("stopping with %d message(s) unwritten and unacked", len(messages))
                return None
            # wait out the backoff in slices of a third of ack_wait, telling JetStream
            # the messages are in progress between them: a backoff as long as ack_wait
            # (the defaults) had them redelivered, and written twice once space was back
            retry_at = time.monotonic() + backoff
            while not stop.is_set() and (left := retry_at - time.monotonic()) > 0:
                if time.monotonic() - last_progress >= self.ack_wait / 3:
                    await _keep_in_progress(messages)
                    last_progress = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(left, self.ack_wait / 3))
            backoff = min(self.max_backoff, backoff * 2)

    async def lag(self) -> int | None:
        """Messages the shared consumer has not yet delivered or not yet seen acked."""
        if not self._subscribed:
            return None
        try:
            info = await self.subscription.consumer_info()
        except (nats.errors.Error, TimeoutError):
            return None
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


def _split(payloads: list[Payload], workers: int) -> list[list[Payload]]:
    """At least one chunk per worker and one per ``TASK_BYTES``, none smaller than
    ``MIN_MESSAGES_PER_TASK`` messages."""
    by_size = math.ceil(sum(len(p.data) for p in payloads) / TASK_BYTES)
    parts = max(1, min(max(workers, by_size), len(payloads) // MIN_MESSAGES_PER_TASK))
    size = math.ceil(len(payloads) / parts)
    return [payloads[i : i + size] for i in range(0, len(payloads), size)]


def _reap(tasks: set[asyncio.Task[None]]) -> None:
    """Drop finished tasks, re-raising the first unexpected failure."""
    for task in [t for t in tasks if t.done()]:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _keep_in_progress(messages: list[Msg]) -> None:
    for msg in messages:
        try:
            await msg.in_progress()
        except nats.errors.Error:
            return
