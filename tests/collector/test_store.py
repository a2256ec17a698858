"""The trace store: a fresh store reads as empty, segments appear to readers at
once, duplicates collapse in the views, and a schema mismatch fails loudly."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collector.segment_writer import SegmentWriter
from store import SCHEMA_VERSION, StoreLayout, StoreVersionError, open_store
from store.schema import CONSUMER_LAG, HEARTBEATS, REJECTED, SPANS


def _span_rows(n: int, *, trace: str = "ab" * 16) -> pa.Table:
    now = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
    rows = [
        {
            "trace_id": trace,
            "span_id": f"{i:016x}",
            "name": "process recruit.cv.parsed",
            "kind": "consumer",
            "service_name": "scorer",
            "start_time": now,
            "end_time": now + dt.timedelta(milliseconds=5),
            "duration_ms": 5.0,
            "status_code": "unset",
            "attributes": "{}",
            "received_at": now,
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=SPANS)


def test_fresh_store_reads_as_empty_not_as_an_error(store_layout: StoreLayout) -> None:
    con = open_store(store_layout.root)
    for view in ("spans", "bus_events", "rejected", "heartbeats", "consumer_lag"):
        assert con.execute(f"select count(*) from {view}").fetchone() == (0,)


def test_a_store_older_than_a_table_reads_it_as_empty(store_layout: StoreLayout) -> None:
    SegmentWriter(layout=store_layout).write("spans", _span_rows(2))
    shutil.rmtree(store_layout.table_dir("consumer_lag"))  # as a store from before it

    con = open_store(store_layout.root)

    assert con.execute("select count(*) from consumer_lag").fetchone() == (0,)
    assert con.execute("select count(*) from spans").fetchone() == (2,)


def test_a_store_older_than_a_table_that_cannot_take_its_seed_still_reads(
    store_layout: StoreLayout, caplog: pytest.LogCaptureFixture
) -> None:
    SegmentWriter(layout=store_layout).write("spans", _span_rows(2))
    shutil.rmtree(store_layout.table_dir("consumer_lag"))
    # root ignores permission bits: the folder the seed needs is taken by a plain file
    store_layout.table_dir("consumer_lag").write_text("in the way")

    con = open_store(store_layout.root)

    assert con.execute("select count(*) from spans").fetchone() == (2,)
    reader = con.cursor()  # as the dashboard's reads and its SQL console's
    assert reader.execute("select count(num_pending) from consumer_lag").fetchone() == (0,)
    assert "read as empty until `choreoscope collect` runs" in caplog.text


def test_a_store_older_than_a_span_column_reads_it_as_null(store_layout: StoreLayout) -> None:
    # a store written before spans had nak_delay_ms: its seed and segments lack it
    old = SPANS.remove(SPANS.get_field_index("nak_delay_ms"))
    pq.write_table(old.empty_table(), store_layout.seed("spans"))
    SegmentWriter(layout=store_layout).write("spans", _span_rows(2).select(old.names))

    con = open_store(store_layout.root)

    assert con.execute("select count(*), count(nak_delay_ms) from spans").fetchone() == (2, 0)
    assert "nak_delay_ms" in pq.read_schema(store_layout.seed("spans")).names


def test_written_segment_is_visible_to_an_open_reader(store_layout: StoreLayout) -> None:
    con = open_store(store_layout.root)
    SegmentWriter(layout=store_layout).write("spans", _span_rows(3))
    assert con.execute("select count(*) from spans").fetchone() == (3,)
    assert con.execute("select distinct service_name from spans").fetchall() == [("scorer",)]


def test_span_delivered_twice_appears_once(store_layout: StoreLayout) -> None:
    writer = SegmentWriter(layout=store_layout)
    writer.write("spans", _span_rows(5))
    writer.write("spans", _span_rows(5))  # the bus redelivered the same batch
    con = open_store(store_layout.root)
    assert con.execute("select count(*) from spans_raw").fetchone() == (10,)
    assert con.execute("select count(*) from spans").fetchone() == (5,)


def test_readers_see_utc_times(store_layout: StoreLayout) -> None:
    SegmentWriter(layout=store_layout).write("spans", _span_rows(1))
    con = open_store(store_layout.root)
    (hour,) = con.execute("select hour(start_time) from spans").fetchone()
    assert hour == 12


def test_store_of_another_schema_version_fails_with_what_to_do(
    store_layout: StoreLayout,
) -> None:
    store_layout.store_file.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(StoreVersionError, match="point --data at a new directory"):
        open_store(store_layout.root)


def test_missing_store_says_how_to_create_one(tmp_path) -> None:
    with pytest.raises(Exception, match="choreoscope collect"):
        open_store(tmp_path / "nowhere")


def test_half_written_segment_is_never_read(store_layout: StoreLayout) -> None:
    folder = store_layout.partition_dir("spans", dt.datetime.now(dt.UTC))
    folder.mkdir(parents=True)
    (folder / ".partial.parquet.tmp").write_bytes(b"PAR1 garbage")
    assert open_store(store_layout.root).execute("select count(*) from spans").fetchone() == (0,)


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temp_behind(tmp_path) -> None:
    from store.durable_files import replacing

    final = tmp_path / "anomalies.parquet"
    final.write_bytes(b"old findings")
    with pytest.raises(OSError), replacing(final) as tmp:
        tmp.write_bytes(b"half of the new")
        raise OSError("disk full")
    assert final.read_bytes() == b"old findings"
    assert [p.name for p in tmp_path.iterdir()] == ["anomalies.parquet"]


def test_two_spans_of_one_payload_refused_for_one_reason_are_two_rejections(
    store_layout: StoreLayout,
) -> None:
    at = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
    two_spans = [b'{"span_id": "01"}', b'{"span_id": "02"}']  # one size, one reason
    rows = pa.Table.from_pylist(
        [{"received_at": at, "source": "nats:choreo.spans.x", "size": len(raw),
          "reason": "span ends before it starts", "raw": raw} for raw in two_spans],
        schema=REJECTED,
    )  # fmt: skip
    SegmentWriter(layout=store_layout).write("rejected", rows, at=at)

    con = open_store(store_layout.root)
    assert [r for (r,) in con.execute("SELECT raw FROM rejected ORDER BY raw").fetchall()] == (
        two_spans
    )


def test_a_redelivered_message_s_rejections_are_listed_once(store_layout: StoreLayout) -> None:
    # its ack was lost in a crash: JetStream delivered it again, and its rejects were
    # written again later; a client's second request with the same bytes is another
    first = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
    later = first + dt.timedelta(seconds=40)
    raw = b'{"span_id": "01"}'

    def refused(at: dt.datetime, source: str, seq: int | None) -> pa.Table:
        return pa.Table.from_pylist(
            [{"received_at": at, "source": source, "reason": "span ends before it starts",
              "size": len(raw), "raw": raw, "stream_seq": seq}], schema=REJECTED)  # fmt: skip

    writer = SegmentWriter(layout=store_layout)
    for at in (first, later):
        writer.write("rejected", refused(at, "nats:choreo.spans.x", 7), at=first)
        writer.write("rejected", refused(at, "otlp-http", None), at=first)

    con = open_store(store_layout.root)
    rows = con.execute("SELECT source, received_at FROM rejected ORDER BY ALL").fetchall()
    assert rows == [("nats:choreo.spans.x", first), ("otlp-http", first), ("otlp-http", later)]


def test_signals_stored_twice_during_compaction_s_grace_are_listed_once(
    store_layout: StoreLayout,
) -> None:
    at = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
    beats = pa.Table.from_pylist(
        [{"service": "scorer", "instance": "s-1", "at": at + dt.timedelta(seconds=5 * k),
          "processed": k} for k in range(3)], schema=HEARTBEATS)  # fmt: skip
    lag = pa.Table.from_pylist(
        [{"at": at, "stream": "EVENTS", "consumer": "scorer--x", "num_pending": 4}],
        schema=CONSUMER_LAG,
    )
    writer = SegmentWriter(layout=store_layout)
    for _ in range(2):  # an input and the compacted output beside it
        writer.write("heartbeats", beats, at=at)
        writer.write("consumer_lag", lag, at=at)

    con = open_store(store_layout.root)
    assert con.execute("SELECT count(*) FROM heartbeats").fetchone() == (3,)
    assert con.execute("SELECT count(*) FROM consumer_lag").fetchone() == (1,)


def test_a_write_whose_folder_went_away_raises_its_own_error(tmp_path) -> None:
    from store.durable_files import replacing

    folder = tmp_path / "findings"
    folder.mkdir()
    with pytest.raises(OSError, match="disk full"), replacing(folder / "a.parquet"):
        folder.rmdir()
        folder.write_bytes(b"a file where the folder was")  # removing the temp fails too
        raise OSError("disk full")
