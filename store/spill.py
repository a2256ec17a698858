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
next one that spills on the same host: its ``owner.json`` names the host and pid.
"""

from __future__ import annotations

import contextlib
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


class SpillDirectory:
    """A connection's spill directory; ``remove()`` once the connection is closed."""

    def __init__(self, path: Path, connection: duckdb.DuckDBPyConnection) -> None:
        self.path = path
        self._finalizer = weakref.finalize(connection, shutil.rmtree, path, ignore_errors=True)

    def remove(self) -> None:
        self._finalizer()


def spill_into_store(
    con: duckdb.DuckDBPyConnection, *, layout: StoreLayout, owner: str
) -> SpillDirectory:
    """Make ``con`` spill to a new directory of its own under ``<data>/.spill``
    (``owner`` names what spills there: ``correlator``, ``compaction``)."""
    root = layout.spill
    root.mkdir(parents=True, exist_ok=True)
    remove_abandoned_spill(layout)
    path = Path(tempfile.mkdtemp(prefix=f"{owner}-", dir=root))
    (path / OWNER_FILE).write_text(
        json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "owner": owner}) + "\n"
    )
    quoted = str(path).replace("'", "''")
    con.execute(f"SET temp_directory = '{quoted}'")
    return SpillDirectory(path, con)


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
    # another host's process cannot be checked from here (a store on shared storage)
    return owner_host == host and not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
