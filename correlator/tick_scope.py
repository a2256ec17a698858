"""Which spans a tick re-judges (``scope_spans``): those of the traces new spans
touch, of the open workflows that may have changed by time alone, and of whatever
else belongs to the same workflows. The SQL is ``engine_sql/scope_spans.sql``.

A workflow is judged on all of its spans or not at all: judged on some, it would
look unfinished. So the scope takes in the traces that share a workflow id with
those named (trace context broken on the way, the workflow id carried on), and every
trace span links join them to, however many hops away (a consumer in a trace of its
own, linked to a producer that was itself a consumer linked further back: the
workflow is the first trace's).
"""

from __future__ import annotations

import datetime as dt

import duckdb

from correlator.sql_text import parsed, statement

# A settled workflow (stalled or failed, its anomalies told) changes by time alone
# when a wait of it that no finding reports yet runs past its deadline (a fan-out's
# second branch), or when a wait a finding reports changes cause (its consumer stops
# catching up after an outage, or falls silent): a tick re-judges it then
# (open_traces.due_at, open_traces.watched). Otherwise only what it is told of
# changes (a consumer back up, a backlog drained): it is re-judged once every this
# many ticks, each on its turn (its workflow id's hash), instead of at every one. In
# a steady stream with 2% of runs faulty they are most of the open workflows.
SETTLED_EVERY = 15
# the links between held traces, each way: a walk over them joins on equality (a
# join on "either end" ran as a nested loop)
LINKS_BOTH_WAYS = """links AS (
    SELECT trace_id, link_trace_id AS other FROM cross_links
    UNION SELECT link_trace_id, trace_id FROM cross_links
)"""
# the walk over span links, only while some held span links to another trace (ours
# never do: the walk costs a few ms a tick)
WALK = f""",
{LINKS_BOTH_WAYS},
scope(trace_id) AS (
    SELECT trace_id FROM kin
    UNION
    SELECT l.other FROM scope AS s JOIN links AS l USING (trace_id)
)"""


def scope_spans(
    con: duckdb.DuckDBPyConnection,
    *,
    linked: bool,
    reloaded: list[str],
    turn: int,
    now: dt.datetime,
    silence_factor: float,
) -> None:
    """Make ``scope_spans`` on ``con`` from ``new_spans``, ``open_traces`` (as of
    ``now``; a settled workflow on its ``turn``), the ``reloaded`` traces and what
    ``held_traces`` and (when ``linked``) ``cross_links`` join them to."""
    walk = {"recursive": "RECURSIVE", "walk": WALK, "scope": "scope"} if linked else {
        "recursive": "", "walk": "", "scope": "kin"
    }  # fmt: skip
    con.execute(
        parsed(statement("scope_spans").format(**walk)),
        {
            "reloaded": reloaded,
            "every": SETTLED_EVERY,
            "turn": turn,
            "now": now,
            "silence_factor": silence_factor,
        },
    )
