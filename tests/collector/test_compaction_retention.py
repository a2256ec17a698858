"""Background upkeep of the store: small segments of closed hours are merged
(deduplicated, sorted by trace) without a reader ever seeing a span vanish or
double, and partitions past the retention period are dropped whole."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collector import compaction
from collector.compaction import Compactor
from collector.decoding import Payload, decode_payloads
from collector.retention import drop_expired_partitions
from collector.segment_writer import SegmentWriter
from instrumentation import wire
from store import StoreLayout, open_store
from store.schema import BUS_EVENTS, HEARTBEATS, REJECTED
from tests.collector.batches import columnar_batch

HOUR = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
NOW_NS = 1_780_000_000 * 10**9  # span times; a redelivered copy carries the same


def write_segments(layout: StoreLayout, *, at: dt.datetime, batches: list[tuple[int, int]]) -> None:
    writer = SegmentWriter(layout=layout)
    for start, n in batches:
        decoded = decode_payloads(
            [Payload(columnar_batch(start, n, now_ns=NOW_NS), wire.CONTENT_TYPE_COLUMNAR, "test")]
        )
        writer.write("spans", decoded.spans, at=at)


def counts(layout: StoreLayout) -> tuple[int, int]:
    con = open_store(layout.root)
    return (
        con.execute("select count(*) from spans").fetchone()[0],
        con.execute("select count(*) from spans_raw").fetchone()[0],
    )


def test_small_segments_of_a_closed_hour_become_one_deduplicated_and_sorted(
    store_layout: StoreLayout,
) -> None:
    # three segments, the third a redelivery of the first
    write_segments(store_layout, at=HOUR, batches=[(100, 30), (0, 30), (100, 30)])
    folder = store_layout.partition_dir("spans", HOUR)
    assert counts(store_layout) == (60, 90)
    compactor = Compactor(layout=store_layout, grace=60)
    assert compactor.run_once(now=HOUR + dt.timedelta(hours=2)) == 1
    # during the grace period the inputs stay for readers that listed them
    assert len(list(folder.glob("*.parquet"))) == 4
    assert counts(store_layout)[0] == 60
    compactor.run_once(now=HOUR + dt.timedelta(hours=2, minutes=5))
    (merged,) = folder.glob("*.parquet")
    assert merged.name.startswith("compacted-")
    assert counts(store_layout) == (60, 60)
    trace_ids = pq.read_table(merged).column("trace_id").to_pylist()
    assert trace_ids == sorted(trace_ids)
    assert not list(folder.glob(".compaction-*"))


def test_heartbeat_segments_of_a_closed_hour_become_one_with_every_beat(
    store_layout: StoreLayout,
) -> None:
    writer = SegmentWriter(layout=store_layout)
    for second in range(5):  # one segment per collector flush
        beat = {
            "service": "scorer", "instance": "scorer-1",
            "at": HOUR + dt.timedelta(seconds=second), "received": second, "processed": second,
            "failed": 0, "dead_lettered": 0, "spans_exported": 0, "spans_dropped": 0,
            "in_flight": 0, "interval_s": 1.0,
        }  # fmt: skip
        writer.write("heartbeats", pa.Table.from_pylist([beat], schema=HEARTBEATS), at=HOUR)
    folder = store_layout.partition_dir("heartbeats", HOUR)
    compactor = Compactor(layout=store_layout, grace=60)

    assert compactor.run_once(now=HOUR + dt.timedelta(hours=2)) == 1
    compactor.run_once(now=HOUR + dt.timedelta(hours=2, minutes=5))

    (merged,) = folder.glob("*.parquet")
    assert merged.name.startswith("compacted-")
    con = open_store(store_layout.root)
    assert con.execute('SELECT list(processed ORDER BY "at") FROM heartbeats').fetchone() == (
        [0, 1, 2, 3, 4],
    )


def test_advisories_and_rejects_are_counted_once_while_compaction_keeps_its_inputs(
    store_layout: StoreLayout,
) -> None:
    writer = SegmentWriter(layout=store_layout)
    for seq in range(3):  # one segment per collector flush
        at = HOUR + dt.timedelta(seconds=seq)
        event = {"kind": "max_deliveries", "stream": "S", "consumer": "scorer",
                 "stream_seq": seq, "deliveries": 5, "at": at}  # fmt: skip
        writer.write("bus_events", pa.Table.from_pylist([event], schema=BUS_EVENTS), at=HOUR)
        refused = {"received_at": at, "source": "otlp-http",
                   "reason": "not protobuf", "size": 3, "raw": b"bad"}  # fmt: skip
        writer.write("rejected", pa.Table.from_pylist([refused], schema=REJECTED), at=HOUR)
    compactor = Compactor(layout=store_layout, grace=60)
    assert compactor.run_once(now=HOUR + dt.timedelta(hours=2)) >= 2
    # inputs and output side by side, for the grace period
    assert len(list(store_layout.partition_dir("bus_events", HOUR).glob("*.parquet"))) == 4

    con = open_store(store_layout.root)
    assert con.execute("select count(*) from bus_events").fetchone()[0] == 3
    assert con.execute("select count(*) from rejected").fetchone()[0] == 3


def test_the_current_hour_is_never_compacted(store_layout: StoreLayout) -> None:
    now = dt.datetime.now(dt.UTC)
    write_segments(store_layout, at=now, batches=[(0, 5), (5, 5)])
    assert Compactor(layout=store_layout).run_once(now=now) == 0
    assert len(list(store_layout.partition_dir("spans", now).glob("*.parquet"))) == 2


def test_compaction_interrupted_before_its_output_landed_loses_nothing(
    store_layout: StoreLayout,
) -> None:
    write_segments(store_layout, at=HOUR, batches=[(0, 10), (10, 10)])
    folder = store_layout.partition_dir("spans", HOUR)
    names = sorted(p.name for p in folder.glob("*.parquet"))
    # what a crash right after writing the manifest leaves behind
    (folder / ".compaction-compacted-x.json").write_text(
        json.dumps({"output": "compacted-x.parquet", "inputs": names})
    )
    Compactor(layout=store_layout, grace=0).run_once(now=HOUR + dt.timedelta(hours=3))
    assert counts(store_layout)[0] == 20


def test_retention_drops_whole_partitions_past_the_period(store_layout: StoreLayout) -> None:
    now = dt.datetime(2026, 11, 26, 12, 30, tzinfo=dt.UTC)
    old, recent = now - dt.timedelta(days=8), now - dt.timedelta(days=6)
    write_segments(store_layout, at=old, batches=[(0, 10)])
    write_segments(store_layout, at=recent, batches=[(10, 10)])
    dropped = drop_expired_partitions(store_layout, retention=7 * 86400, now=now)
    assert dropped == [store_layout.partition_dir("spans", old)]
    assert not store_layout.partition_dir("spans", old).parent.exists()
    assert counts(store_layout) == (10, 10)


def test_compaction_interrupted_after_its_output_landed_keeps_each_heartbeat_once(
    store_layout: StoreLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = SegmentWriter(layout=store_layout)
    for second in range(3):  # one segment per collector flush
        beat = {"service": "scorer", "instance": "scorer-1",
                "at": HOUR + dt.timedelta(seconds=second), "received": second}  # fmt: skip
        writer.write("heartbeats", pa.Table.from_pylist([beat], schema=HEARTBEATS), at=HOUR)
    compactor = Compactor(layout=store_layout, grace=60)
    now = HOUR + dt.timedelta(hours=2)
    # the disk fills between the output's rename and the manifest's visible_at
    real_write_json = compaction._write_json
    writes = []

    def disk_full_on_second_write(path: Path, value: object) -> None:
        writes.append(path)
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write_json(path, value)

    monkeypatch.setattr(compaction, "_write_json", disk_full_on_second_write)
    with contextlib.suppress(OSError):  # logged or raised, the pass failed
        compactor.run_once(now=now)
    monkeypatch.setattr(compaction, "_write_json", real_write_json)

    for minutes in (5, 10, 15):
        compactor.run_once(now=now + dt.timedelta(minutes=minutes))

    (merged,) = store_layout.partition_dir("heartbeats", HOUR).glob("*.parquet")
    assert merged.name.startswith("compacted-")
    con = open_store(store_layout.root)
    assert con.execute('SELECT list(received ORDER BY "at") FROM heartbeats').fetchone() == (
        [0, 1, 2],
    )


def test_a_temp_file_a_killed_write_left_is_removed_when_its_hour_is_compacted(
    store_layout: StoreLayout,
) -> None:
    write_segments(store_layout, at=HOUR, batches=[(0, 30), (100, 30)])
    folder = store_layout.partition_dir("spans", HOUR)
    abandoned = folder / ".spans-x.parquet.4242.tmp"  # a collector killed mid-write
    abandoned.write_bytes(b"PAR1 half a segment")
    two_hours_ago = time.time() - 7200
    os.utime(abandoned, (two_hours_ago, two_hours_ago))
    writing = folder / ".spans-y.parquet.4343.tmp"  # another writer, at it now
    writing.write_bytes(b"PAR1")

    Compactor(layout=store_layout, grace=60).run_once(now=HOUR + dt.timedelta(hours=2))

    assert not abandoned.exists() and writing.exists()
    assert counts(store_layout)[0] == 60
