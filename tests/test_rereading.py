"""Readers read again when the correlator replaces a findings file under their query."""

from __future__ import annotations

import threading

import duckdb
import pyarrow as pa
import pytest

import correlator
from correlator.findings import ANOMALIES, write_findings
from store import StoreLayout, read_retrying

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


def test_without_reading_again_such_a_query_fails(store_layout):
    # what read_retrying is for: DuckDB reads the new file with the old one's layout
    with pytest.raises(duckdb.Error):
        _reads_while_rewritten(
            store_layout, lambda read: read(), reads=5000
        )  # raises at its first failure


def test_a_mistake_in_the_query_is_not_read_again() -> None:
    calls = []

    def mistaken() -> None:
        calls.append(1)
        duckdb.sql("SELECT no_such_column FROM range(1)").fetchall()

    with pytest.raises(duckdb.BinderException):
        read_retrying(mistaken)
    assert len(calls) == 1
