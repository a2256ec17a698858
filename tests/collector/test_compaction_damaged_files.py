"""A segment damaged on disk (cut short by a crash or a disk problem) is moved into
the store's quarantine with its bytes, and costs nothing else: the other partitions
are compacted, old hours still expire, and every view reads the good rows."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pyarrow as pa

from collector.compaction import Compactor
from collector.decoding import Payload, decode_payloads
from collector.maintenance import run_maintenance
from collector.segment_writer import SegmentWriter
from instrumentation import wire
from store import StoreLayout, open_store
from store.schema import HEARTBEATS
from tests.collector.batches import columnar_batch
from tests.damaged_files import cut_short

HOUR = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
NOW_NS = 1_780_000_000 * 10**9


def write_spans(layout: StoreLayout, *, at: dt.datetime, starts: list[int]) -> list[Path]:
    writer = SegmentWriter(layout=layout)
    payloads = [
        Payload(columnar_batch(start, 10, now_ns=NOW_NS), wire.CONTENT_TYPE_COLUMNAR, "test")
        for start in starts
    ]
    return [writer.write("spans", decode_payloads([p]).spans, at=at) for p in payloads]


def write_beats(layout: StoreLayout, *, at: dt.datetime, n: int) -> None:
    writer = SegmentWriter(layout=layout)
    for i in range(n):  # one segment per collector flush
        beat = {"service": "scorer", "instance": "scorer-1", "at": at, "received": i}
        writer.write("heartbeats", pa.Table.from_pylist([beat], schema=HEARTBEATS), at=at)


def quarantined(layout: StoreLayout, segment: Path) -> Path:
    return layout.root / "quarantine" / "spans" / segment.relative_to(layout.table_dir("spans"))


def span_count(layout: StoreLayout) -> int:
    return open_store(layout.root).execute("select count(*) from spans").fetchone()[0]


def test_a_damaged_segment_is_quarantined_and_every_other_partition_compacted(
    store_layout: StoreLayout,
) -> None:
    later = HOUR + dt.timedelta(hours=1)
    damaged, *_ = write_spans(store_layout, at=HOUR, starts=[0, 10, 20])
    write_spans(store_layout, at=later, starts=[30, 40])
    write_beats(store_layout, at=HOUR, n=3)
    bytes_left = cut_short(damaged)

    Compactor(layout=store_layout, grace=0).run_once(now=later + dt.timedelta(hours=2))

    assert quarantined(store_layout, damaged).read_bytes() == bytes_left
    assert not damaged.exists()
    for table, at in [("spans", HOUR), ("spans", later), ("heartbeats", HOUR)]:
        names = [p.name for p in store_layout.partition_dir(table, at).glob("*.parquet")]
        assert any(name.startswith("compacted-") for name in names), (table, at, names)
    assert span_count(store_layout) == 40  # every span but the damaged segment's 10


async def test_maintenance_quarantines_a_damaged_segment_and_still_expires_old_hours(
    store_layout: StoreLayout,
) -> None:
    now = dt.datetime.now(dt.UTC)
    expired, closed = now - dt.timedelta(days=10), now - dt.timedelta(hours=3)
    write_spans(store_layout, at=expired, starts=[0, 10])
    damaged, _ = write_spans(store_layout, at=closed, starts=[20, 30])
    unlucky, _ = write_spans(store_layout, at=now, starts=[40, 50])  # the hour being written
    bytes_left = {damaged: cut_short(damaged), unlucky: cut_short(unlucky)}
    stop = asyncio.Event()
    upkeep = asyncio.create_task(
        run_maintenance(layout=store_layout, retention=7 * 86400, interval=0.05, grace=0, stop=stop)
    )

    def done() -> bool:
        return not store_layout.partition_dir("spans", expired).exists() and all(
            quarantined(store_layout, segment).exists() for segment in bytes_left
        )

    try:
        for _ in range(200):  # at most 20 s: passes run every 0.05 s
            if done():
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await upkeep
    assert not store_layout.partition_dir("spans", expired).exists()
    for segment, content in bytes_left.items():
        assert quarantined(store_layout, segment).read_bytes() == content
    assert span_count(store_layout) == 20  # the two good segments
