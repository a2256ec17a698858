"""Readers read again when a file changed under their query (findings are immutable
now: tests/correlator/test_findings_generations.py shows they need not)."""

from __future__ import annotations

import datetime as dt
import threading

import duckdb
import pyarrow as pa
import pytest

import correlator
from collector.segment_writer import SegmentWriter
from correlator.findings import ANOMALIES, write_findings
from instrumentation.errors import ChoreoscopeError
from store import StoreLayout, open_store, read_retrying
from store.schema import HEARTBEATS
from tests.damaged_files import cut_short

# names the anomalies files twice over, as the views do (edges, the overview)
QUERY = "SELECT count(*) FROM anomalies AS a JOIN anomalies AS b USING (anomaly_id)"


def _anomalies(n: int) -> pa.Table:
    rows = [
        {"anomaly_id": f"a{i:04d}-{n}", "kind": "dropped", "detail": "x" * (n % 90), "revision": 1}
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=ANOMALIES)


def _reads_while_rewritten(layout: StoreLayout, read, *, reads: int) -> list[int]:
    """``reads`` reads of QUERY while another thread keeps replacing the files."""
    stop = threading.Event()

    def rewrite() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            write_findings(layout, "anomalies_recent", _anomalies(n % 200))
            write_findings(layout, "anomalies", _anomalies((n * 7) % 300))
            stop.wait(0.005)  # a watcher writes every second: this is fast enough

    writer = threading.Thread(target=rewrite)
    con = correlator.connect(layout.root)
    writer.start()
    try:
        return [read(lambda: con.execute(QUERY).fetchone()[0]) for _ in range(reads)]
    finally:
        stop.set()
        writer.join()
        con.close()


def test_a_query_over_findings_replaced_under_it_reads_them_again(store_layout):
    counts = _reads_while_rewritten(store_layout, read_retrying, reads=300)
    assert len(counts) == 300  # each read came back, none raised


def test_a_mistake_in_the_query_is_not_read_again() -> None:
    calls = []

    def mistaken() -> None:
        calls.append(1)
        duckdb.sql("SELECT no_such_column FROM range(1)").fetchall()

    with pytest.raises(duckdb.BinderException):
        read_retrying(mistaken)
    assert len(calls) == 1


def test_a_damaged_segment_is_named_with_what_to_do_not_read_again(store_layout) -> None:
    writer = SegmentWriter(layout=store_layout)
    at = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    beats = [{"service": "scorer", "instance": "scorer-1", "at": at, "received": 1}]
    for _ in range(2):
        damaged = writer.write("heartbeats", pa.Table.from_pylist(beats, schema=HEARTBEATS), at=at)
    con = open_store(store_layout.root)
    cut_short(damaged)  # as a crash of the disk can
    calls = []

    def count_beats() -> int:
        calls.append(1)
        return con.execute("SELECT count(*) FROM heartbeats").fetchone()[0]

    with pytest.raises(ChoreoscopeError) as raised:
        read_retrying(count_beats)
    assert str(damaged) in str(raised.value)
    assert "quarantine" in str(raised.value)
    assert len(calls) == 1
    # a reader opening the store afresh is told the same by its first read
    fresh = open_store(store_layout.root)
    with pytest.raises(ChoreoscopeError, match="quarantine"):
        read_retrying(lambda: fresh.execute("SELECT count(*) FROM heartbeats").fetchone())
