"""Replacing a file durably: write beside it, fsync, rename over it, fsync the folder.

Every file the store holds (segments, compacted segments, manifests, findings, the
catalog) is written this way, so a reader or a crash sees the old file or the new
one, never half of one. The temp name is dot-prefixed and ends in ``.tmp``, so no
reader's ``*.parquet`` glob ever matches it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_path(path: Path, *, directory: bool = False) -> None:
    """Flush ``path`` (a file, or a folder's entries) to disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replacing(final: Path, *, tmp: Path | None = None) -> Iterator[Path]:
    """Yield a temp path to write; on success it durably becomes ``final``.

    On any error the temp file is removed and ``final`` is left as it was.
    """
    tmp = tmp or final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        fsync_path(tmp)
        tmp.replace(final)
        fsync_path(final.parent, directory=True)
    except BaseException:
        # a folder gone or replaced must not hide the error that matters
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


# no write through ``replacing`` takes this long: a temp file older was abandoned
ABANDONED_AFTER_S = 3600.0


def remove_abandoned_temp_files(folder: Path, *, now: float | None = None) -> list[Path]:
    """Remove the temp files writers left in ``folder`` when they were killed
    mid-write (dot-prefixed, ``.tmp``, untouched for ``ABANDONED_AFTER_S``); the
    removed. By age, not by process id: a writer on another host shares the folder."""
    now = time.time() if now is None else now
    removed = []
    for path in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to remove
            if now - path.stat().st_mtime > ABANDONED_AFTER_S:
                path.unlink()
                removed.append(path)
    return removed
