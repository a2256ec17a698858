"""Where DuckDB puts what does not fit in a connection's memory limit.

Past its ``memory_limit`` DuckDB spills hash tables and temp tables to files in its
``temp_directory``, which is ``.tmp`` under the working directory unless set: a
process started from a read-only directory then fails where it could have spilled,
and one started elsewhere litters it. Each connection that may work on more than
fits in memory (a correlator pass over a week of spans, a compaction) spills
instead to a directory of its own under ``<data>/.spill``, on the disk that holds the
store, never to a ``/tmp`` that may be memory itself.

The directory goes with its connection (``SpillDirectory.remove``, or when the
connection is collected). One left by a process that was killed is removed by the
next one that spills on the same host: its ``owner.json`` names the host and pid,
and its owner holds a lock on it while it lives. A pid alone does not tell: a
restarted container's process has its predecessor's pid, and another process may
have taken a dead one's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import tempfile
import time
import weakref
from pathlib import Path

import duckdb

from store.layout import StoreLayout

OWNER_FILE = "owner.json"
# a directory without an owner file (its process was killed before writing it) is
# removed once it is this old
UNOWNED_AFTER_S = 86400.0
# the share of the disk space free when a connection begins that it may fill
SPILL_SHARE_OF_FREE = 0.5


# this process's spill directories (a lock taken twice by one process may not conflict)
_OURS: set[Path] = set()


class SpillDirectory:
    """A connection's spill directory; ``remove()`` once the connection is closed."""

    def __init__(self, path: Path, connection: duckdb.DuckDBPyConnection, lock: int) -> None:
        self.path = path
        self._finalizer = weakref.finalize(connection, _remove, path, lock)

    def remove(self) -> None:
        self._finalizer()


def _remove(path: Path, lock: int) -> None:
    shutil.rmtree(path, ignore_errors=True)
    os.close(lock)  # held until it is gone: no other process judges it meanwhile
    _OURS.discard(path)


def spill_into_store(
    con: duckdb.DuckDBPyConnection, *, layout: StoreLayout, owner: str
) -> SpillDirectory:
    """Make ``con`` spill to a new directory of its own under ``<data>/.spill``
    (``owner`` names what spills there: ``correlator``, ``compaction``)."""
    root = layout.spill
    root.mkdir(parents=True, exist_ok=True)
    remove_abandoned_spill(layout)
    path = Path(tempfile.mkdtemp(prefix=f"{owner}-", dir=root))
    lock = os.open(path / OWNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        # locked before it names its pid: a reader of the pid finds the lock held
        with contextlib.suppress(OSError):  # a file system without locks: the pid tells
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        owned = {"host": socket.gethostname(), "pid": os.getpid(), "owner": owner}
        os.write(lock, (json.dumps(owned) + "\n").encode())
        _OURS.add(path)
        con.execute("SET temp_directory = ?", [str(path)])
        # DuckDB's own cap is 90% of the disk free: the collector writes to this disk
        con.execute("SET max_temp_directory_size = ?", [f"{_spill_cap(root)}B"])
    except BaseException:
        _remove(path, lock)
        raise
    return SpillDirectory(path, con, lock)


def _spill_cap(root: Path) -> int:
    """What a connection may spill: half the space free on the store's disk now, so
    that the collector keeps room to write spans."""
    return int(shutil.disk_usage(root).free * SPILL_SHARE_OF_FREE)


def remove_abandoned_spill(layout: StoreLayout) -> list[Path]:
    """Remove the spill directories of processes of this host that are gone, and the
    old ones no process claims; return them."""
    removed = []
    host = socket.gethostname()
    with contextlib.suppress(FileNotFoundError):
        for path in layout.spill.iterdir():
            if path.is_dir() and _abandoned(path, host=host):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _abandoned(path: Path, *, host: str) -> bool:
    try:
        owner = json.loads((path / OWNER_FILE).read_text())
        pid, owner_host = int(owner["pid"]), str(owner["host"])
    except FileNotFoundError:
        with contextlib.suppress(OSError):
            return time.time() - path.stat().st_mtime > UNOWNED_AFTER_S
        return False
    except (OSError, ValueError, KeyError, TypeError):
        return False  # being written, or not ours to judge
    if owner_host != host:  # another host's process cannot be checked from here
        return False  # (a store on shared storage)
    if path in _OURS:
        return False
    if pid == os.getpid():  # an earlier process with this pid: a restarted container's
        return True
    # a live pid may be another process's now: its owner's lock tells
    return not _alive(pid) or _unlocked(path / OWNER_FILE)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _unlocked(owner_file: Path) -> bool:
    """Whether no process holds the lock on ``owner_file`` (False when it cannot tell)."""
    try:
        fd = os.open(owner_file, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:  # held, or a file system without locks
        return False
    finally:
        os.close(fd)
    return True
