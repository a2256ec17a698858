"""Telling the user that the store's disk is full, once and plainly, while the
collector's writers wait for space.

A full disk fails every maintenance pass (compaction's output, a manifest, the
spill directory, the catalog), and every write of span ingest, of the consumer lag
sampler and of the signal (heartbeat and advisory) writer, the same way until someone
frees space.
Logged as any other failure, it printed a traceback or DuckDB's raw error at each
attempt and never said what to do. So
a full disk is recognised, whether Python's ``OSError`` or DuckDB's ``IOException``
reports it, and ``FullDiskNotice`` says which path is full and what to do the first
time, then again only every ``repeat_after`` seconds while it lasts, and once more
when space is back.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
# DuckDB puts the errno and the file into its message, not into attributes:
# ``Could not write file "…/.x.parquet.12.tmp": No space left on device","errno":"28"``
_DUCKDB_NO_SPACE = re.compile(
    rf'No space left on device|Disk quota exceeded|"errno":"({"|".join(map(str, NO_SPACE))})"'
)
# DuckDB quotes its message as JSON: the quotes around the file come escaped
_DUCKDB_FILE = re.compile(r'file \\?"([^"\\]+)\\?"')


def full_disk_path(error: BaseException) -> Path | None:
    """The path whose write ``error`` (or an error it was raised from) says found no
    space left, or ``Path()`` when it names none; None if it is not a full disk."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in NO_SPACE:
            return Path(os.fsdecode(current.filename)) if current.filename else Path()
        if isinstance(current, duckdb.Error) and _DUCKDB_NO_SPACE.search(str(current)):
            named = _DUCKDB_FILE.search(str(current))
            return Path(named.group(1)) if named else Path()
        current = current.__cause__ or current.__context__
    return None


_MAINTENANCE_KEEPS = (
    "writes nothing half: what it could not write is removed and the segments it would "
    "have merged are kept, so nothing is lost"
)


class FullDiskNotice:
    """What the user is told while writes to the store fail for want of space."""

    def __init__(
        self,
        *,
        root: Path,
        doing: str,
        retry_every: float,
        keeping: str = _MAINTENANCE_KEEPS,
        repeat_after: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.doing = doing
        self.retry_every = retry_every
        self.keeping = keeping  # what becomes meanwhile of what it could not write
        self.repeat_after = repeat_after
        self._clock = clock
        self._since: float | None = None
        self._told_at = 0.0

    @property
    def full(self) -> bool:
        return self._since is not None

    def failed(self, *, step: str, path: Path) -> None:
        """``step`` could not write ``path`` (``Path()``: somewhere in the store)."""
        now = self._clock()
        # the folder, not the temp file a failed write leaves no trace of
        where = _existing(path) if path != Path() else self.root
        if self._since is None:
            self._since = self._told_at = now
            prefix = f"{self.doing} cannot write in {where} ({step}): no space left on its disk"
        elif now - self._told_at >= self.repeat_after:
            self._told_at = now
            minutes = (now - self._since) / 60
            prefix = (
                f"{self.doing} still cannot write in {where} ({step}): no space left on its "
                f"disk for {minutes:.0f} min"
            )
        else:
            return
        log.error(
            "%s. Free space there (`df -h %s` shows how much is left), or shorten "
            "--retention so that older hours are dropped. Until then it tries again at "
            "least every %gs, and %s.",
            prefix, where, self.retry_every, self.keeping,
        )  # fmt: skip

    def passed(self) -> None:
        """A pass met no full disk: say so once if the last one did."""
        if self._since is not None:
            minutes = (self._clock() - self._since) / 60
            log.warning(
                "%s writes to %s again: space is back after %.0f min",
                self.doing, self.root, minutes,
            )  # fmt: skip
            self._since = None


def _existing(path: Path) -> Path:
    """``path``, or its nearest folder that exists (a temp file is removed once it failed)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path
