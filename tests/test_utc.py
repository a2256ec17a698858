"""Times read UTC end to end, whatever the zone of the machine the reader runs on:
the dashboard reads through cursors, and a cursor does not inherit a connection's
own settings."""

from __future__ import annotations

import os
import subprocess
import sys

from store import StoreLayout

READ_ZONES = """
import sys
import choreoscope
from dashboard.sql_sandbox import lock_down
con = choreoscope.connect(sys.argv[1])
sandbox = lock_down(choreoscope.connect(sys.argv[1]), store_dir=sys.argv[1])
for c in (con, con.cursor(), sandbox.cursor()):
    print(c.execute("SELECT current_setting('TimeZone')").fetchone()[0])
"""


def test_every_cursor_reads_utc_on_a_machine_in_another_zone(store_layout: StoreLayout) -> None:
    out = subprocess.run(
        [sys.executable, "-c", READ_ZONES, str(store_layout.root)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": "Asia/Tokyo"},
    )

    assert out.stdout.split() == ["UTC", "UTC", "UTC"]
