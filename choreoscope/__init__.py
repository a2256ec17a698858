"""choreoscope: end-to-end visibility for choreographed systems on NATS.

import choreoscope
con = choreoscope.connect("choreoscope-data")   # in-memory DuckDB, every view
con.sql("select * from workflows where status = 'stalled'").show()
"""

from __future__ import annotations

from typing import Any

__all__ = ["connect"]


def __getattr__(name: str) -> Any:
    if name == "connect":
        from correlator import connect

        return connect
    raise AttributeError(f"module 'choreoscope' has no attribute {name!r}")
