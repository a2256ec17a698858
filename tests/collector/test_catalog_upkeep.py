"""``catalog.duckdb`` deleted or damaged while the collector runs: the collector's
maintenance writes it again, so ``duckdb -readonly <data>/catalog.duckdb`` works
again without a restart."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import duckdb

from choreoscope.commands.collect import restore_catalog
from choreoscope.nats_server import EmbeddedNats
from instrumentation import wire
from store import StoreLayout
from tests.collector.batches import columnar_batch
from tests.collector.collector_harness import (
    jetstream,
    publish_spans,
    running_collector,
    wait_for,
    wait_for_count,
)
from tests.collector.test_collect_process import start_collect, wait_ready


def spans_in_catalog(layout: StoreLayout) -> int | None:
    """What a DuckDB user opening the catalog read-only counts in ``spans``."""
    try:
        con = duckdb.connect(str(layout.catalog), read_only=True)
    except duckdb.Error:
        return None
    try:
        return con.execute("SELECT count(*) FROM spans").fetchone()[0]
    finally:
        con.close()


async def test_a_catalog_deleted_or_damaged_while_collecting_is_written_again(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    layout = StoreLayout.at(data)
    layout.ensure()
    restore_catalog(layout)  # as `choreoscope collect` starts
    upkeep = {"restoring catalog.duckdb": lambda: restore_catalog(layout)}
    async with running_collector(nats_server.url, data, maintenance_interval=0.2, upkeep=upkeep):
        async with jetstream(nats_server.url) as js:
            await publish_spans(js, columnar_batch(0, 10), content_type=wire.CONTENT_TYPE_COLUMNAR)
        assert await wait_for_count(data, "select count(*) from spans", 10) == 10
        assert spans_in_catalog(layout) == 10

        layout.catalog.unlink()
        assert await wait_for(lambda: spans_in_catalog(layout) == 10, timeout=10)

        layout.catalog.write_bytes(b"not a database" * 100)  # damaged on disk
        assert await wait_for(lambda: spans_in_catalog(layout) == 10, timeout=10)


async def test_a_collector_that_cannot_write_the_catalog_still_collects_and_says_why(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data, log = tmp_path / "data", tmp_path / "collect.log"
    layout = StoreLayout.at(data)
    layout.ensure()
    # the catalog's name taken by a folder: its write fails as on a full disk
    layout.catalog.mkdir()
    proc = start_collect(nats_server.url, data, log)
    try:
        await wait_ready(log)
        async with jetstream(nats_server.url) as js:
            await publish_spans(js, columnar_batch(0, 10), content_type=wire.CONTENT_TYPE_COLUMNAR)
        assert await wait_for_count(data, "select count(*) from spans", 10) == 10
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
    text = log.read_text()
    assert "could not write" in text and "free disk space" in text
    assert "Traceback" not in text
