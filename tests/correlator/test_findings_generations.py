"""Findings files are immutable: a reader's query never reads a file changed under it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

import correlator
from choreoscope.catalog import write_catalog
from correlator.engine import Correlator
from correlator.findings import (
    ANOMALIES,
    MODEL_STEPS,
    FindingsPruner,
    read_findings,
    write_findings,
)
from correlator.findings_files import (
    current_file,
    fixed_file,
    generations,
    prune_superseded,
    table_folder,
)
from store import StoreLayout

# the correlator's own write path, rewriting findings as fast as it can, in a process
# of its own as `correlate --watch` is: each generation n of `anomalies` is n % 300
# anomalies, of `anomalies_recent` n % 200, of `model_steps` n % 7 + 1 steps, each row
# of a generation saying its n
WRITER = """
import sys
import pyarrow as pa
from correlator.findings import ANOMALIES, MODEL_STEPS, write_findings
from store import StoreLayout

layout = StoreLayout.at(sys.argv[1])

def anomalies(count, n):
    rows = [{"anomaly_id": f"a{i}-{n}", "kind": "dropped", "detail": str(n), "revision": 1}
            for i in range(count)]
    return pa.Table.from_pylist(rows, schema=ANOMALIES)

n = 0
while True:
    n += 1
    write_findings(layout, "anomalies_recent", anomalies(n % 200, n))
    write_findings(layout, "anomalies", anomalies(n % 300, n))
    steps = [{"subject": f"s{i}", "consumer": "c", "p50_ms": float(n)} for i in range(n % 7 + 1)]
    write_findings(layout, "model_steps", pa.Table.from_pylist(steps, schema=MODEL_STEPS))
"""

# names the anomalies twice, as a user's self-join or the overview's queries do
SELF_JOIN = "SELECT count(*) FROM anomalies AS a JOIN anomalies AS b USING (anomaly_id)"
# one generation's steps: as many as its n says, all of that n
ONE_MODEL = "SELECT count(*), count(DISTINCT p50_ms), max(p50_ms) FROM choreography_steps"


def _start_writer(layout: StoreLayout) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(layout.root)])


def _query_while_written(layout: StoreLayout, query: str, *, seconds: float) -> list[tuple]:
    """Run ``query`` on the catalog, as any DuckDB client does (no reading again),
    for ``seconds`` while another process rewrites the findings."""
    write_catalog(layout)
    writer = _start_writer(layout)
    results = []
    try:
        con = duckdb.connect(str(layout.catalog), read_only=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            results.append(con.execute(query).fetchone())  # raises at its first failure
        con.close()
    finally:
        writer.kill()
        writer.wait()
    return results


def test_a_client_that_names_a_findings_view_twice_never_fails_while_a_watcher_writes(
    store_layout,
) -> None:
    # before the findings were immutable, a few percent of these failed ("Invalid
    # data", "Could not read enough bytes", ...): DuckDB opened the file twice and
    # read the new one with the old one's layout
    results = _query_while_written(store_layout, SELF_JOIN, seconds=4)
    assert len(results) > 50  # it ran the whole time, against a writer's many generations
    assert len(generations(store_layout, "anomalies")) > 10


def test_a_reader_sees_one_generation_of_a_rewritten_table_never_two(store_layout) -> None:
    results = _query_while_written(store_layout, ONE_MODEL, seconds=3)
    written = [(count, distinct, n) for count, distinct, n in results if n is not None]
    assert written  # the writer's generations were read
    for count, distinct, n in written:
        assert (count, distinct) == (int(n) % 7 + 1, 1)  # that generation's rows, once


def test_a_superseded_generation_stays_for_the_grace_then_goes(store_layout) -> None:
    steps = pa.Table.from_pylist([{"subject": "s", "consumer": "c"}], schema=MODEL_STEPS)
    write_findings(store_layout, "model_steps", steps)
    first = current_file(store_layout, "model_steps")
    write_findings(store_layout, "model_steps", steps)
    newest = current_file(store_layout, "model_steps")
    assert newest != first
    superseded_at = newest.stat().st_mtime
    # a reader that listed the first may still open it: it stays for 60 s
    assert prune_superseded(store_layout, "model_steps", now=superseded_at + 59) == []
    assert first.exists()
    assert first in prune_superseded(store_layout, "model_steps", now=superseded_at + 61)
    assert not first.exists()
    # the newest stays however old it is
    prune_superseded(store_layout, "model_steps", now=superseded_at + 10**6)
    assert generations(store_layout, "model_steps") == [newest]


def test_a_table_not_written_again_keeps_no_more_than_its_newest_once_the_grace_passed(
    store_layout,
) -> None:
    # a quiet store: the recent anomalies were written a few times, then not again,
    # while the watcher still writes now and then. A reader's query opened every
    # generation left whenever the newest held no row
    engine = Correlator(data_dir=store_layout.root)
    empty = pa.Table.from_pylist([], schema=ANOMALIES)
    for _ in range(5):
        write_findings(store_layout, "anomalies_recent", empty)
    a_minute_ago = time.time() - 61
    for path in generations(store_layout, "anomalies_recent"):
        os.utime(path, (a_minute_ago, a_minute_ago))

    engine.write_findings()  # nothing changed: nothing written
    engine.close()

    assert generations(store_layout, "anomalies_recent") == [
        current_file(store_layout, "anomalies_recent")
    ]


def test_an_empty_table_written_again_adds_no_generation(store_layout) -> None:
    # a healthy store's anomalies were written empty at every pass, a generation each:
    # a reader's plan opens every generation when the newest holds no row
    empty = pa.Table.from_pylist([], schema=ANOMALIES)
    write_findings(store_layout, "anomalies", empty)
    (written,) = [p for p in generations(store_layout, "anomalies") if p.stat().st_size]
    for _ in range(3):
        write_findings(store_layout, "anomalies", empty)
    assert current_file(store_layout, "anomalies") == written
    one = pa.Table.from_pylist([{"anomaly_id": "a1", "revision": 1}], schema=ANOMALIES)
    write_findings(store_layout, "anomalies", one)
    write_findings(store_layout, "anomalies", empty)  # emptied: that is news
    assert read_findings(store_layout, "anomalies").num_rows == 0
    assert current_file(store_layout, "anomalies") != written


def test_superseded_generations_are_swept_together_not_at_each_write(store_layout) -> None:
    # each write used to delete what had passed its grace: every such instant, a
    # reader whose plan opened every listed generation could find one gone
    pruner = FindingsPruner(store_layout, every_s=3600)
    steps = pa.Table.from_pylist([{"subject": "s", "consumer": "c"}], schema=MODEL_STEPS)
    write_findings(store_layout, "model_steps", steps)
    first = current_file(store_layout, "model_steps")
    write_findings(store_layout, "model_steps", steps)
    long_ago = time.time() - 120
    for path in generations(store_layout, "model_steps"):
        os.utime(path, (long_ago, long_ago))
    write_findings(store_layout, "model_steps", steps)
    assert first.exists()  # a write leaves it
    pruner.sweep_if_due()
    assert not first.exists()  # the sweep takes it
    newest = current_file(store_layout, "model_steps")
    write_findings(store_layout, "model_steps", steps)
    for path in generations(store_layout, "model_steps"):
        os.utime(path, (long_ago, long_ago))
    pruner.sweep_if_due()  # not due again within the hour
    assert newest.exists()


def test_a_store_from_before_the_generation_folders_reads_and_is_upgraded(tmp_path) -> None:
    layout = StoreLayout.at(tmp_path / "data")
    layout.ensure()
    # as the correlator wrote it then: one file per table, replaced in place
    layout.findings.mkdir(exist_ok=True)
    row = {"anomaly_id": "a1", "kind": "dropped", "workflow_id": "wf-1", "revision": 3}
    pq.write_table(pa.Table.from_pylist([row], schema=ANOMALIES), fixed_file(layout, "anomalies"))

    con = correlator.connect(layout.root)  # a reader of the new version
    assert con.execute("SELECT anomaly_id, revision FROM anomalies").fetchall() == [("a1", 3)]
    assert read_findings(layout, "anomalies").to_pylist()[0]["anomaly_id"] == "a1"
    # the catalog holds the new views, which read the same
    write_catalog(layout)
    catalog = duckdb.connect(str(layout.catalog), read_only=True)
    assert catalog.execute("SELECT anomaly_id FROM anomalies").fetchall() == [("a1",)]
    catalog.close()

    # the old file stays for readers of the old views until the correlator's first
    # write of the table has been there for the grace period
    write_findings(layout, "anomalies", pa.Table.from_pylist([], schema=ANOMALIES))
    written_at = current_file(layout, "anomalies").stat().st_mtime
    prune_superseded(layout, "anomalies", now=written_at + 1)
    assert fixed_file(layout, "anomalies").exists()
    prune_superseded(layout, "anomalies", now=written_at + 61)
    assert not fixed_file(layout, "anomalies").exists()
    assert con.execute("SELECT count(*) FROM anomalies").fetchone() == (0,)


def test_findings_are_lost_once_a_table_has_no_generation_left(store_layout) -> None:
    correlator.ensure_findings(store_layout)
    from correlator.findings import findings_folder, findings_lost

    folder = findings_folder(store_layout)
    assert not findings_lost(store_layout, folder=folder)
    for path in generations(store_layout, "workflow_status"):
        os.unlink(path)
    assert findings_lost(store_layout, folder=folder)
    assert table_folder(store_layout, "workflow_status").is_dir()
