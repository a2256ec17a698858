"""Compaction: the small segments of a closed partition become one. Span segments are
deduplicated and sorted by trace; the signal tables (heartbeats, bus events,
rejects, consumer lag), written one small segment per collector flush or sample, are
merged as they are.

Safe beside readers and other collectors:
- only partitions whose hour ended ``settle`` ago are touched, so no writer adds
  to them any more;
- one compactor per partition at a time (an ``flock`` on ``.compaction.lock``);
- a manifest naming the output and its inputs is written first, then the output
  (temp name, fsync, rename). The inputs stay until ``grace`` has passed: a reader
  whose glob listed them can still open them, and meanwhile the views' dedupe
  hides the double copies. A later pass deletes them and then the manifest. A crash
  at any step leaves either the inputs alone, or inputs and output (deduplicated),
  never a loss. (During the grace period a compacted hour's signals are listed
  twice: the bus_events and rejected views keep each row once; heartbeats and
  consumer lag, too many to window on every read, are listed twice, which their
  readers tolerate: each takes an instance's or a consumer's latest row.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import duckdb

from store.durable_files import fsync_path, replacing
from store.layout import COMPACTED_PREFIX, StoreLayout

log = logging.getLogger(__name__)

MANIFEST_PREFIX = ".compaction-"
# the statement merging each table's segments
MERGE_SQL = {
    "spans": "compact_spans.sql",
    "heartbeats": "compact_signals.sql",
    "bus_events": "compact_signals.sql",
    "rejected": "compact_signals.sql",
    "consumer_lag": "compact_signals.sql",
}
LOCK_FILE = ".compaction.lock"


def partition_hour(folder: Path) -> dt.datetime | None:
    """The start of the hour a ``date=YYYY-MM-DD/hour=HH`` folder holds, UTC."""
    try:
        date = folder.parent.name.removeprefix("date=")
        hour = int(folder.name.removeprefix("hour="))
        return dt.datetime.fromisoformat(date).replace(hour=hour, tzinfo=dt.UTC)
    except ValueError:
        return None


def partitions(layout: StoreLayout, table: str) -> list[Path]:
    return sorted(p for p in layout.table_dir(table).glob("date=*/hour=*") if p.is_dir())


@contextlib.contextmanager
def partition_lock(folder: Path) -> Iterator[bool]:
    """True if this process now holds the partition's compaction lock."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


class Compactor:
    """Compacts the closed partitions of every table; one per process, used from one thread."""

    def __init__(
        self,
        *,
        layout: StoreLayout,
        grace: float = 60.0,
        settle: float = 300.0,
        small_bytes: int = 16 * 2**20,
        target_bytes: int = 128 * 2**20,
        memory_limit: str = "512MB",
    ) -> None:
        self.layout = layout
        self.grace = grace
        self.settle = settle
        self.small_bytes = small_bytes
        self.target_bytes = target_bytes
        sql = resources.files("collector") / "sql"
        self._sql = {table: (sql / name).read_text("utf-8") for table, name in MERGE_SQL.items()}
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET TimeZone = 'UTC'")
        self._con.execute("SET memory_limit = ?", [memory_limit])
        self._con.execute("SET preserve_insertion_order = false")

    def run_once(self, *, now: dt.datetime | None = None) -> int:
        """Compact every closed partition; returns the number of segments written."""
        now = now or dt.datetime.now(dt.UTC)
        written = 0
        for table in MERGE_SQL:
            for folder in partitions(self.layout, table):
                hour = partition_hour(folder)
                if hour is None or hour + dt.timedelta(hours=1, seconds=self.settle) > now:
                    continue
                with partition_lock(folder) as held:
                    if held:
                        written += self.compact_partition(folder, table=table, now=now)
        return written

    def compact_partition(self, folder: Path, *, table: str, now: dt.datetime) -> int:
        pending = self._finish_manifests(folder, now=now)
        small = [
            p
            for p in sorted(folder.glob("*.parquet"))
            if p.name not in pending and p.stat().st_size < self.small_bytes
        ]
        written = 0
        for group in self._groups(small):
            self._merge(folder, group, sql=self._sql[table], now=now)
            written += 1
        return written

    def _groups(self, files: list[Path]) -> list[list[Path]]:
        groups: list[list[Path]] = [[]]
        size = 0
        for path in files:
            if groups[-1] and size + path.stat().st_size > self.target_bytes:
                groups.append([])
                size = 0
            groups[-1].append(path)
            size += path.stat().st_size
        return [g for g in groups if len(g) >= 2]

    def _merge(self, folder: Path, inputs: list[Path], *, sql: str, now: dt.datetime) -> None:
        output = folder / f"{COMPACTED_PREFIX}{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
        manifest = folder / f"{MANIFEST_PREFIX}{output.stem}.json"
        _write_json(manifest, {"output": output.name, "inputs": [p.name for p in inputs]})
        started = time.monotonic()
        try:
            with replacing(output) as tmp:
                self._con.execute(sql, [[str(p) for p in inputs], str(tmp)])
        except BaseException:
            manifest.unlink(missing_ok=True)
            raise
        _write_json(
            manifest,
            {
                "output": output.name,
                "inputs": [p.name for p in inputs],
                # on the caller's clock, which tests move; plus the time the merge took
                "visible_at": (now + dt.timedelta(seconds=time.monotonic() - started)).isoformat(),
            },
        )
        log.info("compacted %d segments of %s into %s", len(inputs), folder, output.name)

    def _finish_manifests(self, folder: Path, *, now: dt.datetime) -> set[str]:
        """Delete the inputs of compactions older than ``grace``; names still pending."""
        pending: set[str] = set()
        for manifest in sorted(folder.glob(f"{MANIFEST_PREFIX}*.json")):
            try:
                entry = json.loads(manifest.read_text())
            except (OSError, ValueError):
                manifest.unlink(missing_ok=True)
                continue
            visible_at = entry.get("visible_at")
            if not (folder / entry["output"]).exists() or visible_at is None:
                manifest.unlink(missing_ok=True)  # crashed before the output landed
                continue
            if dt.datetime.fromisoformat(visible_at) + dt.timedelta(seconds=self.grace) > now:
                pending.update(entry["inputs"])
                pending.add(entry["output"])
                continue
            for name in entry["inputs"]:
                (folder / name).unlink(missing_ok=True)
            fsync_path(folder, directory=True)
            manifest.unlink(missing_ok=True)
        return pending

    def close(self) -> None:
        self._con.close()


def _write_json(path: Path, value: object) -> None:
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(value))
