"""A real collector on a small full disk of its own, for the tests of what it says and
keeps there (see ``tests/test_unusable_store.py`` for the disk)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from store import StoreLayout
from tests.test_unusable_store import on_a_disk_of_its_own

# Mounts a 2 MiB tmpfs at $1, copies the store $2 onto it, fills it but for $6 bytes
# (0 when not given), then runs $3 -c $4 <data> <filler> $5: the filler's removal
# frees the disk
FILL_THEN_COLLECT = """
mount -t tmpfs -o size=2m tmpfs "$1" && cp -a "$2" "$1/data" || exit 99
head -c 8M /dev/zero > "$1/filler" 2>/dev/null
truncate -s "-${6:-0}" "$1/filler"
exec "$3" -c "$4" "$1/data" "$1/filler" "$5"
"""

# The start of the collector script: its arguments (data, filler, NATS URL), what it
# logged (``told``, for ``until`` a line says something)
COLLECTOR_PRELUDE = """
import asyncio, json, logging, sys, time
from pathlib import Path
from collector.service import CollectorConfig, run_collector
from store import open_store

data, filler, url = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
told = []
class Told(logging.Handler):
    def emit(self, record):
        told.append(record.getMessage())
logging.getLogger().addHandler(Told())

async def until(predicate):
    deadline = time.monotonic() + 60
    while not predicate() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
"""


def collect_on_a_full_disk(
    script: str, *, store: StoreLayout, tmp_path: Path, nats_url: str, room: str = "0"
) -> tuple[Path, str, Any]:
    """Run ``script`` (``COLLECTOR_PRELUDE`` and its own part) on a copy of ``store`` on
    a full disk of its own, with ``room`` bytes left; the data folder it ran on, what it
    logged (no traceback in it) and the JSON it printed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    result = subprocess.run(
        on_a_disk_of_its_own(FILL_THEN_COLLECT, str(disk), str(store.root),
                             sys.executable, script, nats_url, room),
        capture_output=True, text=True, timeout=180, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return disk / "data", result.stderr, json.loads(result.stdout)
