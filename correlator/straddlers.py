"""The older spans of the workflows a resumed cold pass judges (resume.py).

The pass judges the spans of recent hour partitions; a workflow active in them may
have begun before, and judged without its older spans it would look unfinished (a
consumer span without its publish). Its older traces are found among those of the
older segments (engine_sql/older_traces.sql, a narrow scan), marked as far as shared
workflow ids and span links lead (straddling_traces.sql), and read whole from only
the segments that hold them.
"""

from __future__ import annotations

import logging

import duckdb

from correlator.sql_text import first_column, statement

log = logging.getLogger(__name__)

# how many times marking follows workflow ids and links further back (as many as
# inherited_workflows follows span links)
HOPS = 8

# the filter on older spans that keeps those of marked traces
STRADDLING = "hash(trace_id) IN (SELECT trace_key FROM older_traces WHERE straddles)"

SEEDS_FROM_MARKED = """
    CREATE OR REPLACE TEMP TABLE straddling_seeds AS
    SELECT trace_key, workflow_key FROM older_traces WHERE straddles
    UNION
    SELECT unnest(links), NULL FROM older_traces WHERE straddles AND links IS NOT NULL
"""


def straddling_segments(
    con: duckdb.DuckDBPyConnection, *, judged: list[str], older: list[str]
) -> list[str]:
    """Make ``older_traces`` the traces of the ``older`` segments, those of workflows
    the ``judged`` segments continue marked ``straddles``; return the older segments
    that hold a marked one."""
    con.execute(statement("older_traces"), {"older": older})
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE straddling_seeds AS
        WITH judged AS (
            SELECT DISTINCT trace_id, workflow_id, link_trace_id
            FROM read_parquet($judged, union_by_name = true, hive_partitioning = false)
        )
        SELECT hash(trace_id) AS trace_key,
            CASE WHEN workflow_id IS NOT NULL THEN hash(workflow_id) END AS workflow_key
        FROM judged
        UNION
        SELECT hash(link_trace_id), NULL FROM judged WHERE link_trace_id IS NOT NULL
        """,
        {"judged": judged},
    )
    marked = 0
    for _hop in range(HOPS + 1):
        (count,) = con.execute(statement("straddling_traces")).fetchone()
        if not count:
            break
        marked += count
        con.execute(SEEDS_FROM_MARKED)
    con.execute("DROP TABLE temp.main.straddling_seeds")
    if not marked:
        return []
    holding = first_column(
        con,
        "SELECT DISTINCT filename FROM read_parquet($older, filename = true, "
        "union_by_name = true, hive_partitioning = false) "
        f"WHERE {STRADDLING}",
        {"older": older},
    )
    log.info(
        "%d traces of workflows still judged began before the hours judged again; "
        "reading them from %d older segments",
        marked, len(holding),
    )  # fmt: skip
    return sorted(holding)
