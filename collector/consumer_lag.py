"""JetStream consumer lag: every ``interval`` the collector samples every consumer of
every stream into ``consumer_lag``.

A sample says how far behind a consumer is (``num_pending``: in the stream, not yet
delivered to it) and how much it holds unfinished (``num_ack_pending``: delivered,
not yet acked; ``num_redelivered``: of those, delivered more than once). A
consumer group whose backlog grows while its deliveries stop is down or stuck; one
whose backlog stays high is too slow for its producers.

Samples are snapshots: the next supersedes the last. One the bus cannot answer is
skipped with a warning. One the store cannot take (disk full) is kept and written
with the next, up to ``MAX_HELD_ROWS``, beyond which the oldest are dropped with an
error: losing an old snapshot loses no fact a newer one does not hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

import duckdb
import nats.errors
import pyarrow as pa
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo
from nats.js.errors import APIError

from collector.full_disk import FullDiskNotice, full_disk_path
from collector.segment_writer import SegmentWriter
from store.schema import CONSUMER_LAG

log = logging.getLogger(__name__)

MAX_PAGES = 64  # of 256 streams or consumers
MAX_HELD_ROWS = 100_000


def consumer_lag_row(info: ConsumerInfo, *, at: dt.datetime) -> dict[str, Any]:
    """A ``consumer_lag`` row from a consumer's info."""
    config = info.config
    filters = [config.filter_subject] if config.filter_subject else []
    filters += list(config.filter_subjects or [])
    delivered, ack_floor = info.delivered, info.ack_floor
    return {
        "at": at,
        "stream": info.stream_name,
        "consumer": info.name,
        "durable": bool(config.durable_name),
        "filter_subject": ",".join(filters) or None,
        "num_pending": info.num_pending,
        "num_ack_pending": info.num_ack_pending,
        "num_redelivered": info.num_redelivered,
        "num_waiting": info.num_waiting,
        "delivered_stream_seq": delivered.stream_seq if delivered else None,
        "ack_floor_stream_seq": ack_floor.stream_seq if ack_floor else None,
        "last_delivered_at": delivered.last_active if delivered else None,
    }


class ConsumerLagSampler:
    """Samples every JetStream consumer into ``consumer_lag`` until stopped."""

    def __init__(self, *, js: JetStreamContext, writer: SegmentWriter, interval: float) -> None:
        self.js = js
        self.writer = writer
        self.interval = interval
        self.samples = 0  # consumers sampled and written
        self._held: list[dict[str, Any]] = []  # sampled, not yet written
        self._unreadable = False  # the bus refused the last sample: said once, not each time
        # a full disk refuses every sample alike: said once, then every 10 min
        self._full_disk = FullDiskNotice(
            root=writer.layout.root,
            doing="the consumer lag sampler",
            retry_every=interval,
            keeping=(
                f"keeps the samples it could not write for the next try (past "
                f"{MAX_HELD_ROWS} rows the oldest go: a newer sample supersedes them)"
            ),
        )

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sample_once()
            except Exception:  # a sampler that died would stop every later sample
                log.exception("consumer lag sample failed; its %d rows are dropped",
                              len(self._held))  # fmt: skip
                self._held = []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    async def sample_once(self) -> None:
        """Sample every consumer, and write what is held."""
        try:
            self._held += await self._sample()
        except (nats.errors.Error, TimeoutError) as e:
            # e.g. a NATS user not allowed $JS.API.STREAM.LIST: said once, not every sample
            (log.debug if self._unreadable else log.warning)(
                "cannot read JetStream consumer lag (%s); trying again every %gs",
                str(e) or type(e).__name__, self.interval,
            )  # fmt: skip
            self._unreadable = True
        else:
            if self._unreadable:
                log.info("JetStream consumer lag is readable again")
            self._unreadable = False
        if len(self._held) > MAX_HELD_ROWS:
            dropped = len(self._held) - MAX_HELD_ROWS
            # on a full disk the notice said that the oldest go past the cap: at each
            # sample, this said it again and again while the disk stayed full
            (log.debug if self._full_disk.full else log.error)(
                "dropping the %d oldest consumer lag samples: the store has refused them "
                "too long", dropped,
            )  # fmt: skip
            del self._held[:dropped]
        if not self._held:
            return
        table = pa.Table.from_pylist(self._held, schema=CONSUMER_LAG)
        try:
            await asyncio.to_thread(self.writer.write, "consumer_lag", table)
        except (OSError, duckdb.Error) as e:
            if (path := full_disk_path(e)) is not None:
                self._full_disk.failed(step="consumer lag samples", path=path)
                return
            log.error("cannot write consumer lag to the store at %s: %s; keeping %d samples "
                      "for the next try", self.writer.layout.root, e, len(self._held))  # fmt: skip
            return
        self._full_disk.passed()
        self.samples += len(self._held)
        self._held = []

    async def _sample(self) -> list[dict[str, Any]]:
        at = dt.datetime.now(dt.UTC)
        rows = []
        streams = await _all_pages(self.js.streams_info, key=lambda s: s.config.name)
        for name in streams:
            try:
                consumers = await _all_pages(
                    lambda offset, name=name: self.js.consumers_info(name, offset),
                    key=lambda c: c.name,
                )
            except APIError as e:  # deleted since it was listed, or its leader moving
                log.debug("skipping stream %s in this lag sample: %s", name, e)
                continue
            rows += [consumer_lag_row(info, at=at) for info in consumers.values()]
        return rows


async def _all_pages(list_page: Any, *, key: Any) -> dict[str, Any]:
    """Every item of a JetStream list API by ``key``, page after page until an empty
    one (in a cluster, a page whose members did not answer comes back short)."""
    items: dict[str, Any] = {}
    offset = 0
    for _ in range(MAX_PAGES):
        page = await list_page(offset)
        if not page:
            return items
        items.update((key(item), item) for item in page)
        offset += len(page)
    log.warning("listed only the first %d JetStream streams or consumers of one stream",
                len(items))  # fmt: skip
    return items
