"""One `choreoscope up` or `demo` at a time runs on a store.

A second one on the same ``--data`` started its own nats-server on the first's
JetStream directory (removing the first's ports file on the way), appended to the
first's logs, cleared the demo's ground truth, announced itself up, and only then
lost its correlator to the first's. Each now holds an exclusive ``flock`` on
``<data>/.stack.lock`` for as long as it runs, naming itself in it; a second one is
refused, before it starts or writes anything, with that name. The kernel lets go of
the lock when its holder ends, however it ends.

Collectors, which may be many on one store, and readers take no lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from instrumentation.errors import ChoreoscopeError

LOCK_FILE = ".stack.lock"


class StackTakenError(ChoreoscopeError):
    """Another `choreoscope up` or `demo` runs on this store."""

    def __init__(self, *, data: Path, holder: str) -> None:
        self.data = data
        self.holder = holder
        super().__init__(
            f"{holder} already runs on the store {data}. Stop it first (Ctrl-C in its "
            "terminal, or kill -INT its pid), or pass --data with another directory"
        )


@contextlib.contextmanager
def sole_stack(data: Path, *, command: str, dashboard: str | None) -> Iterator[None]:
    """Hold ``data`` for ``command`` (``up``, ``demo``) while the block runs; raise
    ``StackTakenError`` naming the holder if another one holds it. ``dashboard`` is
    the URL the holder serves, for the one it refuses to point at."""
    data.mkdir(parents=True, exist_ok=True)
    fd = os.open(data / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackTakenError(data=data, holder=_holder(fd)) from None
        except OSError:  # a file system without locks: two stacks cannot be told apart
            pass
        _name(fd, command=command, dashboard=dashboard)
        yield
    finally:
        os.close(fd)  # releases the lock


def _name(fd: int, *, command: str, dashboard: str | None) -> None:
    record = {
        "command": command,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "dashboard": dashboard,
    }
    with contextlib.suppress(OSError):  # a full disk: the lock holds without its name
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)


def _holder(fd: int) -> str:
    """``choreoscope up`` (pid 1234 on host h, since 2026-11-27 12:00:00 UTC,
    dashboard http://127.0.0.1:8501)"""
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
        since = dt.datetime.fromisoformat(record["since"])
        dashboard = f", dashboard {record['dashboard']}" if record.get("dashboard") else ""
        return (
            f"`choreoscope {record['command']}` (pid {record['pid']} on host "
            f"{record['host']}, since {since:%Y-%m-%d %H:%M:%S} UTC{dashboard})"
        )
    except (OSError, ValueError, KeyError, TypeError):  # named only as it locked
        return "another `choreoscope up` or `demo`"
