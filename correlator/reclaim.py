"""Giving back the memory of rows a watcher deleted.

DuckDB keeps a temp table's deleted rows until their row group is rewritten. The
watcher deletes from the same tables every eviction (the spans of traces it let go,
superseded verdicts, old heartbeats and advisories), so over days of uptime their memory, and the
rows every scan steps over, would grow with all it ever held rather than with what
it holds. A table is copied anew once most of what it stores is deleted rows.
"""

from __future__ import annotations

import duckdb

from correlator.sql_text import parsed

# the tables a watcher's eviction deletes from
RECLAIMED = (
    "work_spans",
    "cross_links",
    "all_status",
    "heartbeats",
    "bus_events",
    "consumer_lag",
    "open_traces",
)

RECLAIM_AT = 2.0
"""Copy a table once it stores this many rows per live one."""


def reclaim_deleted(con: duckdb.DuckDBPyConnection, *, tables: tuple[str, ...]) -> list[str]:
    """Copy each of ``tables`` (temp tables) that stores mostly deleted rows; return
    the ones copied."""
    stored = dict(
        con.execute(
            parsed("""
            SELECT table_name, estimated_size FROM duckdb_tables()
            WHERE database_name = 'temp' AND list_contains($tables, table_name)
            """),
            {"tables": list(tables)},
        ).fetchall()
    )
    copied = []
    for name in tables:
        if name not in stored:
            continue
        (live,) = con.execute(f"SELECT count(*) FROM temp.main.{name}").fetchone()
        if stored[name] > RECLAIM_AT * max(live, 1_000):
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM temp.main.{name}")
            copied.append(name)
    return copied
