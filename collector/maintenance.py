"""The collector's background upkeep, every ``interval``: damaged segments are moved
into quarantine, then small segments compacted, then expired partitions dropped,
then the caller's own steps (``upkeep``).
Each step runs whatever became of the one before it: a partition compaction cannot
handle must not stop retention from freeing the disk. A full disk is told once, with
what to do, and then only now and then while it lasts (``collector.full_disk``): it
fails every pass the same way until someone frees space."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Mapping

import duckdb

from collector.compaction import Compactor
from collector.full_disk import FullDiskNotice, full_disk_path
from collector.retention import drop_expired_partitions
from store.layout import StoreLayout
from store.quarantine import DamagedFileSweep

log = logging.getLogger(__name__)


async def run_maintenance(
    *,
    layout: StoreLayout,
    retention: float,
    interval: float,
    grace: float,
    stop: asyncio.Event,
    upkeep: Mapping[str, Callable[[], object]] | None = None,
) -> None:
    """Quarantine, compact and expire until ``stop``; failures are logged, never fatal."""
    sweep = DamagedFileSweep(layout=layout)
    compactor = Compactor(layout=layout, grace=grace)
    full_disk = FullDiskNotice(root=layout.root, doing="store maintenance", retry_every=interval)
    try:
        while not stop.is_set():
            await asyncio.to_thread(
                maintain_store, layout=layout, sweep=sweep, compactor=compactor,
                retention=retention, interval=interval, upkeep=upkeep, full_disk=full_disk,
            )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        compactor.close()
        sweep.close()


def maintain_store(
    *,
    layout: StoreLayout,
    sweep: DamagedFileSweep,
    compactor: Compactor,
    retention: float,
    interval: float,
    now: dt.datetime | None = None,
    upkeep: Mapping[str, Callable[[], object]] | None = None,
    full_disk: FullDiskNotice | None = None,
) -> None:
    """One pass of upkeep; each step's failure is logged and the next runs."""
    full_disk = full_disk or FullDiskNotice(
        root=layout.root, doing="store maintenance", retry_every=interval
    )
    disk_was_full = False
    steps: list[tuple[str, Callable[[], object]]] = [
        ("checking new segments", sweep.run_once),
        ("compaction", lambda: compactor.run_once(now=now)),
        ("retention", lambda: drop_expired_partitions(layout, retention=retention, now=now)),
        *(upkeep or {}).items(),
    ]
    for name, step in steps:
        try:
            step()
        except (OSError, duckdb.Error, ValueError) as e:
            if (path := full_disk_path(e)) is not None:
                full_disk.failed(step=name, path=path)
                disk_was_full = True
            else:
                log.error("store maintenance: %s failed (%s); retrying in %.0fs", name, e, interval)
    if not disk_was_full:
        full_disk.passed()
