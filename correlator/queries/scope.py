"""Scoping the correlator's views to what a reader shows: a time window, one
workflow, or the whole store.

The views over spans (``workflows``, ``messages``, ``hops``, ``edges``) read
``correlated_spans``, which the correlator's engine re-points at the spans it
re-evaluates. Readers do the same: a temporary table of the spans in scope, and a
temporary ``correlated_spans`` view over it that shadows the global one on this
connection only, for the duration of the ``with`` block. A page over the last hour
then costs that hour, not the whole store; and a query over all time reads the
store once, not once for each of the dozen places the views name the spans.

Temporary objects belong to one connection: use a cursor of your own (as the
dashboard does for every query), and not the engine's connection, which points
``correlated_spans`` elsewhere itself.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from correlator.queries.query_files import query_text
from correlator.sql_text import first_column
from store.sql_files import sql_files


@contextmanager
def scoped_to_window(
    con: duckdb.DuckDBPyConnection, *, since: dt.datetime | None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Views over spans see the traces active since ``since`` and the open workflows;
    with no ``since``, every span (``scoped_to_store``)."""
    if since is None:
        with scoped_to_store(con):
            yield con
        return
    with _scoped(con, "scope_window", {"since": since}):
        yield con


@contextmanager
def scoped_to_store(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Views over spans see every stored span, read once into a temporary table."""
    with _scoped(con, "scope_store", {}):
        yield con


def reads_spans(query: str) -> bool:
    """Whether ``query`` names one of the correlator's views over spans (worth
    ``scoped_to_store`` when it has no scope of its own). A name inside a string or a
    comment counts too: that only costs the copy."""
    return _SPAN_VIEW_NAME.search(query) is not None


@contextmanager
def scoped_to_workflow(
    con: duckdb.DuckDBPyConnection, *, workflow_id: str
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Views over spans see only the traces of one workflow, and those linked to them.
    The traces are looked up first, so that the spans are read by a list of ids."""
    own = first_column(con, query_text("workflow_own_traces"), {"workflow_id": workflow_id})
    linked = first_column(con, query_text("workflow_linked_traces"), {"traces": own}) if own else []
    with _scoped(con, "scope_workflow", {"traces": sorted({*own, *linked})}):
        yield con


@contextmanager
def _scoped(
    con: duckdb.DuckDBPyConnection, query: str, params: dict[str, object]
) -> Iterator[None]:
    con.execute(query_text(query), params)
    con.execute("CREATE OR REPLACE TEMP VIEW correlated_spans AS SELECT * FROM scoped_spans")
    try:
        # every view over spans joins this one, and it is recursive: computed at each
        # place they name it, it made a query plan of hundreds of operators (a
        # `select count(*) from hops` planned for 0.3 s and reserved 1.4 GB on 16k
        # spans). Copied once, it shadows the view, as in the correlator's own passes.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE inherited_workflows AS "
            "SELECT * FROM main.inherited_workflows"
        )
        yield
    finally:
        con.execute("DROP TABLE IF EXISTS temp.inherited_workflows")
        con.execute("DROP VIEW IF EXISTS temp.correlated_spans")
        con.execute("DROP TABLE IF EXISTS temp.scoped_spans")


@functools.cache
def views_over_spans() -> frozenset[str]:
    """The correlator's views that read ``correlated_spans``, directly or through each
    other, as their SQL files define them."""
    views = {}
    for _, text in sql_files("correlator"):
        code = re.sub(r"--[^\n]*", "", text)
        defined = re.search(r"CREATE OR REPLACE VIEW (\w+)", code)
        if defined:
            views[defined.group(1)] = code
    reading = {"correlated_spans"}
    grew = True
    while grew:
        grew = False
        for name, code in views.items():
            if name not in reading and any(re.search(rf"\b{r}\b", code) for r in reading):
                reading.add(name)
                grew = True
    return frozenset(reading - {"correlated_spans"})


_SPAN_VIEW_NAME = re.compile(r"\b(" + "|".join(sorted(views_over_spans())) + r")\b", re.IGNORECASE)
