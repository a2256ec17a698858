"""One correlator at a time writes a store's findings.

Two correlators on one store took turns writing ``<data>/findings/``: readers saw
one's verdicts, then the other's, and each new anomaly was alerted twice. A
correlator (``--watch`` for as long as it runs, ``--once`` for its pass) holds an
exclusive ``flock`` on ``<data>/findings/.writer.lock``, which names it; a second
one is refused with that name. The kernel lets go of the lock when its holder
ends, however it ends, so a killed correlator leaves nothing to clean up.

Readers (``workflows``, ``sql``, the dashboard) and ``model`` write no findings,
and take no lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator

from instrumentation.errors import ChoreoscopeError
from store import SCHEMA_VERSION, StoreLayout

log = logging.getLogger(__name__)

LOCK_FILE = ".writer.lock"


class FindingsTakenError(ChoreoscopeError):
    """Another correlator writes this store's findings."""

    def __init__(self, *, layout: StoreLayout, holder: str) -> None:
        self.holder = holder
        super().__init__(
            f"another correlator writes the findings of {layout.root}: {holder}. Stop it "
            "first, or read what it finds with `choreoscope workflows` and `choreoscope sql`"
        )


@contextlib.contextmanager
def sole_writer(layout: StoreLayout, *, role: str) -> Iterator[None]:
    """Hold the store's findings for ``role`` (``correlate --watch``) while the block
    runs; raise ``FindingsTakenError`` naming the holder if another process holds them.
    A findings folder that cannot be written is not refused here: the correlator says
    so where it writes."""
    layout.findings.mkdir(parents=True, exist_ok=True)
    path = layout.findings / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        log.debug("cannot open %s (%s): two correlators would not be told apart", path, e)
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FindingsTakenError(layout=layout, holder=_holder(fd)) from None
        except OSError as e:  # a file system without locks
            log.debug("cannot lock %s (%s): two correlators would not be told apart", path, e)
        _name(fd, role=role)
        _upgrade_version(layout)
        yield
    finally:
        os.close(fd)  # releases the lock


def _upgrade_version(layout: StoreLayout) -> None:
    """Mark a store of an older version as of this one: from here on this correlator
    writes findings generations, and the previous release's findings files go stale,
    then away. That release, started again, would read no finding and alert every
    anomaly again; it refuses a store of another version instead. Not before: a
    reader of this version (the dashboard upgraded first) leaves it its store."""
    try:
        if layout.mark_current():
            log.info("%s upgraded to schema version %d", layout.root, SCHEMA_VERSION)
    except OSError as e:  # a full disk: the findings cannot be written either
        log.warning("could not record the schema version of %s (%s)", layout.root, e)


def _name(fd: int, *, role: str) -> None:
    """Write who holds the lock, for the one it refuses."""
    record = {
        "role": role,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    with contextlib.suppress(OSError):  # a full disk: the lock holds without its name
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)


def _holder(fd: int) -> str:
    """The holder as its lock file names it: ``correlate --watch`` (pid 1234 on host
    h, since 2026-11-27 12:00:00 UTC)."""
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
        since = dt.datetime.fromisoformat(record["since"])
        return (
            f"`{record['role']}` (pid {record['pid']} on host {record['host']}, since "
            f"{since:%Y-%m-%d %H:%M:%S} UTC)"
        )
    except (OSError, ValueError, KeyError, TypeError):  # named only as it locked
        return "a correlator that has not said which yet"
