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
  never a loss; an output that landed is never merged again with its inputs: a
  manifest still without its ``visible_at`` (the process died, or the disk filled,
  between the output's rename and that write) gets it from the next pass. (During
  the grace period a compacted hour's signals are listed twice: the bus_events and
  rejected views keep each row once; heartbeats and consumer lag, too many to
  window on every read, are listed twice, which their readers tolerate: each takes
  an instance's or a consumer's latest row.)
- a segment that cannot be read is moved into the store's quarantine
  (``store.quarantine``) and the rest of its partition compacted; any other failure
  leaves that partition as it was, logged, and the others are compacted still.
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

from collector.full_disk import full_disk_path
from store.durable_files import fsync_path, remove_abandoned_temp_files, replacing
from store.layout import COMPACTED_PREFIX, StoreLayout
from store.quarantine import quarantine, unreadable_reason
from store.spill import SpillDirectory, spill_into_store

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
        # made by the first pass, not here: on a full disk its owner file cannot be
        # written, and a compactor that could not be made failed every pass with a
        # traceback instead of saying the disk is full
        self._spill: SpillDirectory | None = None

    def run_once(self, *, now: dt.datetime | None = None) -> int:
        """Compact every closed partition; returns the number of segments written.

        A full disk ends the pass with its error (the partition at hand left as it
        was): every further merge would fill the disk to its last byte again, which
        the collector needs for new spans."""
        now = now or dt.datetime.now(dt.UTC)
        if self._spill is None:
            # an hour's merge larger than the limit spills beside the store, not into
            # the working directory (which may be read-only)
            self._spill = spill_into_store(self._con, layout=self.layout, owner="compaction")
        written = 0
        for table in MERGE_SQL:
            for folder in partitions(self.layout, table):
                hour = partition_hour(folder)
                if hour is None or hour + dt.timedelta(hours=1, seconds=self.settle) > now:
                    continue
                try:  # one partition's failure leaves the others to compact
                    with partition_lock(folder) as held:
                        if held:
                            written += self.compact_partition(folder, table=table, now=now)
                except (OSError, duckdb.Error, ValueError) as e:
                    if full_disk_path(e) is not None:
                        raise
                    log.error(
                        "compacting %s failed (%s): nothing of it is lost, and "
                        "the next pass takes it up again", folder, e,
                    )  # fmt: skip
        return written

    def compact_partition(self, folder: Path, *, table: str, now: dt.datetime) -> int:
        for path in remove_abandoned_temp_files(folder):
            log.info("removed %s, left by a write that was killed", path)
        pending = self._finish_manifests(folder, now=now)
        small = [
            p
            for p in sorted(folder.glob("*.parquet"))
            if p.name not in pending and p.stat().st_size < self.small_bytes
        ]
        written = 0
        for group in self._groups(small):
            try:
                self._merge(folder, group, sql=self._sql[table], now=now)
            except duckdb.Error as e:
                group = self._set_aside_unreadable(group, failure=e)
                if len(group) < 2:
                    continue
                self._merge(folder, group, sql=self._sql[table], now=now)
            written += 1
        return written

    def _set_aside_unreadable(self, group: list[Path], *, failure: duckdb.Error) -> list[Path]:
        """After a merge failed: quarantine the inputs DuckDB cannot read, return the
        others. If every input reads, the failure was not theirs: raise it again."""
        readable = []
        for path in group:
            reason = unreadable_reason(self._con, path, whole=True)
            if reason is None:
                readable.append(path)
            else:
                quarantine(self.layout, path, reason=reason)
        if len(readable) == len(group):
            raise failure
        return readable

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
            if not output.exists():  # else it landed: the next pass finishes it
                manifest.unlink(missing_ok=True)
            raise
        # on the caller's clock, which tests move; plus the time the merge took
        _mark_visible(
            manifest, output, inputs, now + dt.timedelta(seconds=time.monotonic() - started)
        )
        log.info("compacted %d segments of %s into %s", len(inputs), folder, output.name)

    def _finish_manifests(self, folder: Path, *, now: dt.datetime) -> set[str]:
        """Delete the inputs of compactions older than ``grace``; names still pending."""
        pending: set[str] = set()
        for manifest in sorted(folder.glob(f"{MANIFEST_PREFIX}*.json")):
            try:
                entry = json.loads(manifest.read_text())
            except (OSError, ValueError) as e:
                output = folder / (manifest.name.removeprefix(MANIFEST_PREFIX)[:-5] + ".parquet")
                if output.exists():  # which inputs it holds is not known any more
                    raise ValueError(
                        f"the compaction manifest {manifest} cannot be read ({e}) and its "
                        f"output {output.name} exists: the partition is left as it is, since "
                        "merging that output with its inputs again would list their signal "
                        "rows twice; move the manifest aside to compact it anyway"
                    ) from e
                manifest.unlink(missing_ok=True)
                continue
            output = folder / entry["output"]
            if not output.exists():
                manifest.unlink(missing_ok=True)  # crashed before the output landed
                continue
            visible_at = entry.get("visible_at")
            if visible_at is None:
                # the output landed (it is renamed into place only once whole), but
                # its visible_at was not written: it supersedes its inputs all the
                # same, and readers may have listed it, so its grace period starts now
                inputs = [folder / name for name in entry["inputs"]]
                _mark_visible(manifest, output, inputs, now)
                visible_at = now.isoformat()
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
        if self._spill is not None:
            self._spill.remove()


def _mark_visible(manifest: Path, output: Path, inputs: list[Path], at: dt.datetime) -> None:
    """Record in ``manifest`` that ``output`` became visible ``at``."""
    _write_json(
        manifest,
        {"output": output.name, "inputs": [p.name for p in inputs], "visible_at": at.isoformat()},
    )


def _write_json(path: Path, value: object) -> None:
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(value))
