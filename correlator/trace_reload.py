"""Bringing traces back from the store into a watcher's memory (``SpanMemory``):
the traces late spans continue, with the rest of their workflows, as far as span
links and shared workflow ids lead."""

from __future__ import annotations

import logging

import duckdb

from correlator.sql_text import first_column, parsed, statement
from correlator.stored_spans import WORK_COLUMNS

log = logging.getLogger(__name__)

# how many span links back a late span's evicted traces are reloaded
# (inherited_workflows follows as many)
LINK_HOPS = 8
# at most this many traces are brought back for one tick's late spans
MAX_RELOADED_TRACES = 1000


def reload_traces(
    con: duckdb.DuckDBPyConnection,
    *,
    wanted: list[str],
    continuing: list[str],
    held_before: set[str],
) -> list[str]:
    """Insert into ``work_spans`` (and ``cross_links``) the stored spans of the
    ``wanted`` traces, then, hop by hop, of the rest of their workflows, and of the
    workflows the ``continuing`` traces (new ones, of workflows memory let go) carry
    on; return the traces brought back. ``held_before``: the wanted traces the store
    is known to hold (their old spans may all be arriving again), whose kin is
    looked for even if no span of theirs is found."""
    reloaded: list[str] = []
    reloaded_spans = "(SELECT * FROM work_spans WHERE trace_id IN (SELECT unnest($traces)))"
    for _hop in range(LINK_HOPS):
        if not wanted and not continuing:
            break
        if len(reloaded) + len(wanted) > MAX_RELOADED_TRACES:
            log.warning(
                "late spans would bring back %d more traces from the store; bringing back "
                "%d: their workflows may be judged on part of their spans",
                len(wanted), max(0, MAX_RELOADED_TRACES - len(reloaded)),
            )  # fmt: skip
            wanted = wanted[: max(0, MAX_RELOADED_TRACES - len(reloaded))]
        if wanted:
            # the ids as a constant list, not a join: the filter then reaches the
            # segments below the store's deduplication, where each row group's bloom
            # filter of trace ids skips it unless it holds one (a join on the ids
            # read and deduplicated every stored span: 0.57 s on a million spans,
            # 34 ms this way, and growing with the store)
            con.execute(
                f"""
                INSERT INTO work_spans
                SELECT {WORK_COLUMNS} FROM spans AS s
                ANTI JOIN new_spans AS n USING (trace_id, span_id)
                WHERE list_contains($traces, s.trace_id)
                """,
                {"traces": wanted},
            )
            con.execute(
                f"INSERT INTO cross_links {cross_links(reloaded_spans)}", {"traces": wanted}
            )
        reloaded += wanted
        # those the store held (or whose old spans arrive again): a trace it does
        # not hold (a parent never exported) has no kin to look for
        stored = first_column(
            con,
            parsed("SELECT trace_id FROM work_spans WHERE trace_id IN (SELECT unnest($traces))"),
            {"traces": wanted},
        )
        stored = sorted(set(stored) | (held_before & set(wanted)) | set(continuing))
        continuing = []
        if not stored:
            break
        workflows = first_column(  # their workflow ids, a constant list for workflow_kin
            con,
            parsed("""
            SELECT DISTINCT workflow_id FROM (
                SELECT workflow_id FROM work_spans WHERE list_contains($traces, trace_id)
                UNION ALL
                SELECT workflow_id FROM new_spans WHERE list_contains($traces, trace_id)
            ) WHERE workflow_id IS NOT NULL
            """),
            {"traces": stored},
        )
        wanted = first_column(  # the rest of their workflows, if not held
            con,
            parsed(statement("workflow_kin")),
            {"traces": stored, "workflows": workflows, "tried": reloaded},
        )
    return reloaded


def cross_links(spans: str) -> str:
    """The span links among ``spans`` (a table, or a query in parentheses) that join
    two traces, as a query."""
    return f"SELECT DISTINCT trace_id, link_trace_id FROM {spans} WHERE link_trace_id <> trace_id"
