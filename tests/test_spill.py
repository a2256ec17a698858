"""What DuckDB cannot hold in memory goes to <data>/.spill, never to the working
directory, and a directory left there by a process that was killed is removed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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


def test_a_spill_directory_of_a_killed_process_is_removed_by_the_next_one(
    store_layout: StoreLayout,
) -> None:
    killed = _left_by(store_layout, "correlator-killed", pid=_gone_pid(), host=socket.gethostname())
    running = _left_by(
        store_layout, "correlator-running", pid=os.getpid(), host=socket.gethostname()
    )
    # a store on shared storage: another host's process cannot be checked from here
    elsewhere = _left_by(store_layout, "correlator-elsewhere", pid=_gone_pid(), host="other-host")

    con = duckdb.connect()
    spill = spill_into_store(con, layout=store_layout, owner="correlator")
    assert not killed.exists()
    assert running.exists() and elsewhere.exists()
    (directory,) = con.execute("SELECT current_setting('temp_directory')").fetchone()
    assert Path(directory) == spill.path and spill.path.parent == store_layout.spill
    con.close()
    spill.remove()
    assert not spill.path.exists()


def test_compaction_spills_beside_the_store_not_into_the_working_directory(
    store_layout: StoreLayout,
) -> None:
    compactor = Compactor(layout=store_layout)
    (directory,) = compactor._con.execute("SELECT current_setting('temp_directory')").fetchone()
    assert Path(directory).parent == store_layout.spill  # DuckDB's default: ./.tmp
    compactor.close()
    assert not Path(directory).exists()
