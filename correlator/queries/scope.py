"""Scoping the correlator's views to what a reader shows: a time window, or one workflow.

The views over spans (``workflows``, ``messages``, ``hops``, ``edges``) read
``correlated_spans``, which the correlator's engine re-points at the spans it
re-evaluates. Readers do the same: a temporary table of the spans in scope, and a
temporary ``correlated_spans`` view over it that shadows the global one on this
connection only, for the duration of the ``with`` block. A page over the last hour
then costs that hour, not the whole store.

Temporary objects belong to one connection: use a cursor of your own (as the
dashboard does for every query), and not the engine's connection, which points
``correlated_spans`` elsewhere itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from correlator.queries.query_files import query_text


@contextmanager
def scoped_to_window(
    con: duckdb.DuckDBPyConnection, *, since: dt.datetime | None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Views over spans see the traces active since ``since`` and the open workflows."""
    if since is None:
        yield con
        return
    with _scoped(con, "scope_window", {"since": since}):
        yield con


@contextmanager
def scoped_to_workflow(
    con: duckdb.DuckDBPyConnection, *, workflow_id: str
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Views over spans see only the traces of one workflow."""
    with _scoped(con, "scope_workflow", {"workflow_id": workflow_id}):
        yield con


@contextmanager
def _scoped(
    con: duckdb.DuckDBPyConnection, query: str, params: dict[str, object]
) -> Iterator[None]:
    con.execute(query_text(query), params)
    con.execute("CREATE OR REPLACE TEMP VIEW correlated_spans AS SELECT * FROM scoped_spans")
    try:
        yield
    finally:
        con.execute("DROP VIEW IF EXISTS temp.correlated_spans")
        con.execute("DROP TABLE IF EXISTS temp.scoped_spans")
