"""What DuckDB cannot hold in memory goes to <data>/.spill, never to the working
directory, and a directory left there by a process that was killed is removed."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb

from collector.compaction import Compactor
from store import StoreLayout
from store.spill import OWNER_FILE, spill_into_store


def _left_by(layout: StoreLayout, name: str, *, pid: int, host: str) -> Path:
    path = layout.spill / name
    path.mkdir(parents=True)
    (path / OWNER_FILE).write_text(json.dumps({"host": host, "pid": pid, "owner": "correlator"}))
    (path / "duckdb_temp_storage-0.tmp").write_bytes(b"\0" * 4096)
    return path


def _gone_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                           capture_output=True, text=True)  # fmt: skip
    return int(child.stdout)


@contextlib.contextmanager
def _spilling_elsewhere(layout: StoreLayout) -> Iterator[tuple[int, Path]]:
    """Another process of this host with a spill directory in ``layout``: its pid and
    the directory."""
    code = (
        "import sys, duckdb\n"
        "from store import StoreLayout\n"
        "from store.spill import spill_into_store\n"
        "con = duckdb.connect()\n"
        "spill = spill_into_store(con, layout=StoreLayout.at(sys.argv[1]), owner='correlator')\n"
        "print(spill.path, flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(layout.root)],
        cwd=Path(__file__).resolve().parents[1],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        yield child.pid, Path(child.stdout.readline().strip())
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


def test_a_spill_directory_of_a_killed_process_is_removed_by_the_next_one(
    store_layout: StoreLayout,
) -> None:
    host = socket.gethostname()
    killed = _left_by(store_layout, "correlator-killed", pid=_gone_pid(), host=host)
    # a restarted container's process has the pid of the one killed before it
    restarted = _left_by(store_layout, "correlator-restarted", pid=os.getpid(), host=host)
    # a store on shared storage: another host's process cannot be checked from here
    elsewhere = _left_by(store_layout, "correlator-elsewhere", pid=_gone_pid(), host="other-host")

    with _spilling_elsewhere(store_layout) as (pid, running):
        # a dead process's pid another one took since
        reused = _left_by(store_layout, "correlator-reused", pid=pid, host=host)
        con = duckdb.connect()
        spill = spill_into_store(con, layout=store_layout, owner="correlator")
        assert not killed.exists() and not restarted.exists() and not reused.exists()
        assert running.exists() and elsewhere.exists()
        # nor does a process take its own for abandoned
        assert spill.path.exists() and running.exists()
        second = spill_into_store(duckdb.connect(), layout=store_layout, owner="compaction")
        assert spill.path.exists()
        second.remove()
    (directory,) = con.execute("SELECT current_setting('temp_directory')").fetchone()
    assert Path(directory) == spill.path and spill.path.parent == store_layout.spill
    con.close()
    spill.remove()
    assert not spill.path.exists()
    assert not running.exists()  # removed by its own process as it ended


def test_compaction_spills_beside_the_store_not_into_the_working_directory(
    store_layout: StoreLayout,
) -> None:
    compactor = Compactor(layout=store_layout)
    compactor.run_once()  # which makes its spill directory (not the constructor: a full
    # disk must not keep a compactor from being made, to say so at each pass)
    (directory,) = compactor._con.execute("SELECT current_setting('temp_directory')").fetchone()
    assert Path(directory).parent == store_layout.spill  # DuckDB's default: ./.tmp
    compactor.close()
    assert not Path(directory).exists()
