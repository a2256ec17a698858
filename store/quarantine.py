"""Store files that cannot be read: found, explained, moved aside.

Segments are written under a temp name, fsynced and renamed, so no reader sees half
of one. A file can still end up damaged on disk (cut short by a crash of the
machine or a disk problem, or by a bad copy), and one such file would fail every
query over its table. So:

- the collector's maintenance checks each segment once (its Parquet footer, with
  DuckDB: about half a millisecond) and compaction reads its inputs whole; a file
  DuckDB cannot read is moved to ``<data>/quarantine/<table>/<its path in the
  table>``, where no view's glob reaches it. Its bytes are kept, never deleted;
- a reader meeting one before that (``read_retrying``) raises
  ``UnreadableSegmentError``, naming the file and what to do, instead of reading
  again as if the file had changed under it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import uuid
from pathlib import Path

import duckdb

from instrumentation.errors import ChoreoscopeError
from store.durable_files import fsync_path
from store.layout import SEED_FILE, STORE_FILE, StoreLayout
from store.schema import TABLES

log = logging.getLogger(__name__)

QUARANTINE_DIR = "quarantine"
# DuckDB names the file it could not read in quotes
_NAMED_FILE = re.compile(r"""["']([^"'\n]+\.parquet)["']""")


class UnreadableSegmentError(ChoreoscopeError):
    """A file of the store is damaged: every query over its table fails until it is
    moved aside."""

    def __init__(self, *, path: Path, reason: str, destination: Path | None) -> None:
        self.path = path
        self.reason = reason
        self.destination = destination
        if destination is None:
            fix = "move it out of the store directory to read the rest"
        else:
            fix = (
                "a running `choreoscope collect` moves it into the store's quarantine "
                "folder at its next maintenance pass (every minute by default); to read "
                f"the rest now, move it there yourself: mkdir -p '{destination.parent}' "
                f"&& mv '{path}' '{destination}'"
            )
        super().__init__(
            f"the store file {path} cannot be read ({reason}): it is damaged, e.g. cut "
            f"short by a crash or a disk problem, and its rows cannot be read; {fix}"
        )


def quarantine_path(path: Path) -> Path | None:
    """Where ``path``, a file of a table's folder, goes in quarantine (None if it is
    not one)."""
    for table_dir in path.parents:
        root = table_dir.parent
        if table_dir.name in TABLES and (root / STORE_FILE).exists():
            return root / QUARANTINE_DIR / table_dir.name / path.relative_to(table_dir)
    return None


def unreadable_reason(con: duckdb.DuckDBPyConnection, path: Path, *, whole: bool) -> str | None:
    """Why DuckDB cannot read the Parquet file ``path`` (its footer, or with ``whole``
    every row), or None if it can, or if the file is gone or cannot be opened at all
    (a permission problem is not damage)."""
    try:
        with open(path, "rb"):
            pass
    except OSError:
        return None
    query = (
        # every value of every row: hashing each row as a whole reads all its columns
        "SELECT bit_xor(hash(r)) FROM read_parquet(?) AS r"
        if whole
        else "SELECT count(*) FROM parquet_file_metadata(?)"
    )
    try:
        con.execute(query, [str(path)]).fetchall()
    except (duckdb.IOException, duckdb.InvalidInputException, duckdb.ConversionException) as e:
        if not path.exists():  # removed by compaction or retention meanwhile
            return None
        reason = str(e).split("\n", 1)[0]
        return reason.replace(f" '{path}'", "").replace(f' "{path}"', "")
    return None


def quarantine(layout: StoreLayout, path: Path, *, reason: str) -> Path | None:
    """Move the damaged file ``path`` into quarantine, keeping its bytes; log what
    happened and what to do. Returns where it went (None if it was gone)."""
    destination = quarantine_path(path)
    if destination is None:
        raise ValueError(f"{path} is not a file of a table of the store at {layout.root}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists():  # an earlier file of that name was quarantined
        destination = destination.with_name(f"{destination.stem}.{uuid.uuid4().hex[:8]}.parquet")
    try:
        os.rename(path, destination)
    except FileNotFoundError:
        return None
    fsync_path(destination.parent, directory=True)
    fsync_path(path.parent, directory=True)
    with contextlib.suppress(OSError):  # why it is there, for whoever finds it later
        destination.with_name(destination.name + ".reason.txt").write_text(
            f"moved here from {path} at {dt.datetime.now(dt.UTC).isoformat()}: {reason}\n"
        )
    log.error(
        "store file %s cannot be read (%s): moved it to %s, where no query reads it "
        "(its bytes are kept). Its rows are missing from every view: put back a good "
        "copy if you have one (e.g. from a backup), or delete it once no longer needed",
        path, reason, destination,
    )  # fmt: skip
    return destination


class DamagedFileSweep:
    """Checks each segment of the store once and quarantines those DuckDB cannot
    read; one per process, used from one thread."""

    def __init__(self, *, layout: StoreLayout) -> None:
        self.layout = layout
        self._checked: set[str] = set()
        self._con = duckdb.connect(":memory:")

    def run_once(self) -> list[Path]:
        """Check the files not checked before; return those quarantined."""
        moved: list[Path] = []
        listed: set[str] = set()
        for table in TABLES:
            files = self.layout.segments(table)
            listed |= files
            for name in sorted(files - self._checked):
                path = Path(name)
                reason = unreadable_reason(self._con, path, whole=False)
                if reason is not None and quarantine(self.layout, path, reason=reason):
                    moved.append(path)
                else:
                    self._checked.add(name)
        self._checked &= listed  # forget files compacted or expired since
        if any(path.name == SEED_FILE for path in moved):
            self.layout.ensure_seeds()
        return moved

    def close(self) -> None:
        self._con.close()


def damaged_file_error(error: duckdb.Error, *, whole: bool) -> UnreadableSegmentError | None:
    """The error to raise if ``error`` names a file that cannot be read now either
    (damaged, not merely replaced or removed under the read): its footer, or with
    ``whole`` every row."""
    con: duckdb.DuckDBPyConnection | None = None
    try:
        for name in _NAMED_FILE.findall(str(error)):
            path = Path(name)
            if not path.exists():
                continue
            con = con or duckdb.connect(":memory:")
            reason = unreadable_reason(con, path, whole=whole)
            if reason is not None:
                return UnreadableSegmentError(
                    path=path, reason=reason, destination=quarantine_path(path)
                )
        return None
    finally:
        if con is not None:
            con.close()
