"""A store written by the previous release (schema version 1: one findings file per
table, replaced in place) upgraded in place, and started again with that release."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import correlator
from correlator.findings import ANOMALIES, write_findings
from correlator.findings_files import fixed_file, table_folder
from correlator.watch import correlate_once
from store import SCHEMA_VERSION, StoreLayout, StoreVersionError

ALERTED_AT = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def _store_of_the_previous_release(tmp_path) -> StoreLayout:
    """As version 1 left it: ``store.json`` saying 1, ``findings/anomalies.parquet``
    holding an anomaly it alerted."""
    layout = StoreLayout.at(tmp_path / "data")
    layout.ensure()
    layout.store_file.write_text(json.dumps({"schema_version": 1}) + "\n")
    row = {
        "anomaly_id": "a1",
        "kind": "dropped",
        "workflow_id": "wf-1",
        "detected_at": ALERTED_AT,
        "alerted_at": ALERTED_AT,
        "revision": 2,
    }
    pq.write_table(pa.Table.from_pylist([row], schema=ANOMALIES), fixed_file(layout, "anomalies"))
    return layout


def _previous_release_accepts(layout: StoreLayout) -> bool:
    # version 1's StoreLayout.check_version, word for word: any other version is refused
    return json.loads(layout.store_file.read_text())["schema_version"] == 1


def test_a_store_of_the_previous_release_is_read_by_this_one(tmp_path) -> None:
    layout = _store_of_the_previous_release(tmp_path)
    layout.check_version()  # not refused
    con = correlator.connect(layout.root)
    assert con.execute("SELECT anomaly_id, alerted_at FROM anomalies").fetchall() == [
        ("a1", ALERTED_AT)
    ]


def test_the_previous_release_refuses_the_store_once_this_correlator_wrote_its_findings(
    tmp_path,
) -> None:
    # it read the findings files this version stops writing, then deletes: it saw no
    # anomaly, alerted every one again, and its own files were deleted at the next upgrade
    layout = _store_of_the_previous_release(tmp_path)
    correlate_once(data_dir=layout.root)

    assert not _previous_release_accepts(layout)
    assert json.loads(layout.store_file.read_text())["schema_version"] == SCHEMA_VERSION
    con = correlator.connect(layout.root)  # this version reads it on, nothing lost
    assert con.execute("SELECT anomaly_id, alerted_at FROM anomalies").fetchall() == [
        ("a1", ALERTED_AT)
    ]


def test_a_reader_of_this_version_leaves_the_store_to_the_previous_release(tmp_path) -> None:
    # the dashboard upgraded before the correlator: the old correlator still runs
    layout = _store_of_the_previous_release(tmp_path)
    correlator.connect(layout.root).close()
    assert _previous_release_accepts(layout)


def test_a_store_of_a_later_version_is_refused_with_what_to_do(tmp_path) -> None:
    layout = _store_of_the_previous_release(tmp_path)
    layout.store_file.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(StoreVersionError, match="point --data at a new directory"):
        correlate_once(data_dir=layout.root)


def _previous_release_writes(layout: StoreLayout, *anomaly_ids: str) -> None:
    """Its correlator's write of ``anomalies``: a new file renamed over the old one."""
    rows = [
        {"anomaly_id": a, "kind": "dropped", "alerted_at": ALERTED_AT, "revision": 2}
        for a in anomaly_ids
    ]
    tmp = layout.findings / ".anomalies.parquet.tmp"
    pq.write_table(pa.Table.from_pylist(rows, schema=ANOMALIES), tmp)
    tmp.replace(fixed_file(layout, "anomalies"))


def test_what_the_previous_correlator_alerted_after_a_reader_upgraded_is_not_alerted_again(
    tmp_path,
) -> None:
    # the dashboard (a reader) upgraded first, the old correlator ran on a while
    layout = _store_of_the_previous_release(tmp_path)
    correlator.connect(layout.root).close()
    _previous_release_writes(layout, "a1", "a2")

    con = correlator.connect(layout.root)
    assert con.execute("SELECT anomaly_id FROM anomalies ORDER BY 1").fetchall() == [
        ("a1",),
        ("a2",),
    ]
    # the correlator upgraded next keeps a2 as alerted, as the old one recorded it
    correlate_once(data_dir=layout.root)
    con = correlator.connect(layout.root)
    assert con.execute("SELECT anomaly_id, alerted_at FROM anomalies ORDER BY 1").fetchall() == [
        ("a1", ALERTED_AT),
        ("a2", ALERTED_AT),
    ]


# as `collect` and `correlate` do when they start, each in its own process
WRITE_CATALOG = """
import sys
from choreoscope.catalog import write_catalog
from store import StoreLayout
sys.stdin.read()  # both start writing at once
write_catalog(StoreLayout.at(sys.argv[1]))
"""


def test_collect_and_correlate_started_together_both_bring_the_catalog_up_to_date(
    tmp_path,
) -> None:
    # after an upgrade both find the catalog outdated: they wrote one temp file, each
    # deleting the other's, both failed, and readers kept the previous views
    layout = _store_of_the_previous_release(tmp_path)
    for _ in range(4):
        layout.catalog.unlink(missing_ok=True)
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", WRITE_CATALOG, str(layout.root)],
                stdin=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for writer in writers:  # imports done, both go
            writer.stdin.close()
        errors = [w.stderr.read() for w in writers]
        assert [w.wait() for w in writers] == [0, 0], errors
        catalog = duckdb.connect(str(layout.catalog), read_only=True)
        assert catalog.execute("SELECT anomaly_id FROM anomalies").fetchall() == [("a1",)]
        catalog.close()
    assert not list(layout.root.glob(".catalog*"))  # no temp file left behind


def test_every_generation_of_an_upgraded_table_has_this_versions_columns(tmp_path) -> None:
    # the previous release's anomalies have no webhook_at: linked in as a generation, a
    # query whose plan opened every generation failed ("schema mismatch in glob") for
    # the minute it stayed beside the correlator's first write
    layout = _store_of_the_previous_release(tmp_path)
    old = pq.read_table(fixed_file(layout, "anomalies")).drop_columns(["webhook_at"])
    pq.write_table(old, fixed_file(layout, "anomalies"))
    correlator.connect(layout.root).close()  # a reader migrates it
    write_findings(layout, "anomalies", pa.Table.from_pylist([], schema=ANOMALIES))

    folder = table_folder(layout, "anomalies")
    rows = (
        duckdb.connect()
        .execute(
            f"SELECT anomaly_id, alerted_at, webhook_at FROM read_parquet('{folder}/*.parquet')"
        )
        .fetchall()
    )
    assert rows == [("a1", ALERTED_AT, ALERTED_AT)]  # owed to no webhook
