"""Retention: whole hour partitions older than the retention period are dropped.

A partition is removed only once its whole hour is past the retention period,
and never while a compaction holds it. A reader that listed its files an instant
before may fail to open one and should simply re-run its query; the dashboard and
``choreoscope sql`` read recent data, so this is rare by construction.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

from collector.compaction import partition_hour, partition_lock, partitions
from store.durable_files import fsync_path
from store.layout import StoreLayout
from store.schema import TABLES

log = logging.getLogger(__name__)


def drop_expired_partitions(
    layout: StoreLayout, *, retention: float, now: dt.datetime | None = None
) -> list[Path]:
    """Remove every table's partitions whose hour ended more than ``retention`` s ago."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(seconds=retention)
    dropped: list[Path] = []
    for table in TABLES:
        for folder in partitions(layout, table):
            hour = partition_hour(folder)
            if hour is None or hour + dt.timedelta(hours=1) > cutoff:
                continue
            try:  # one partition's failure leaves the others to drop
                with partition_lock(folder) as held:
                    if not held:
                        continue
                    shutil.rmtree(folder)
                dropped.append(folder)
                date_dir = folder.parent
                if not any(date_dir.iterdir()):
                    date_dir.rmdir()
                fsync_path(date_dir.parent, directory=True)
            except OSError as e:
                log.error(
                    "retention: dropping %s failed (%s); the next pass tries again", folder, e
                )
    if dropped:
        log.info("retention: dropped %d partition(s) older than %.0fs", len(dropped), retention)
    return dropped
