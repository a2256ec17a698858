"""The collector's background upkeep: compaction, then retention, every ``interval``."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import duckdb

from collector.compaction import Compactor
from collector.retention import drop_expired_partitions
from store.layout import StoreLayout

log = logging.getLogger(__name__)


async def run_maintenance(
    *, layout: StoreLayout, retention: float, interval: float, grace: float, stop: asyncio.Event
) -> None:
    """Compact and expire partitions until ``stop``; failures are logged, never fatal."""
    compactor = Compactor(layout=layout, grace=grace)
    try:
        while not stop.is_set():
            try:
                await asyncio.to_thread(compactor.run_once)
                await asyncio.to_thread(drop_expired_partitions, layout, retention=retention)
            except (OSError, duckdb.Error, ValueError) as e:
                log.error("store maintenance failed (%s); retrying in %.0fs", e, interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        compactor.close()
