"""Read functions of the Workflows page: the filtered table and its filter choices."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from correlator.queries.query_files import query_frame, query_text, window_start
from correlator.queries.scope import scoped_to_window

WORKFLOW_STATUSES = ("stalled", "failed", "in_flight", "completed")
LISTED_AT_MOST = 500  # workflows a list holds, stuck first


def list_workflows(
    con: duckdb.DuckDBPyConnection,
    *,
    since: dt.datetime | None,
    statuses: tuple[str, ...] = (),
    workflow_type: str | None = None,
    service: str | None = None,
    search: str | None = None,
    limit: int = LISTED_AT_MOST,
) -> pd.DataFrame:
    """Workflow runs active in the window, stalled and failed first.

    Empty ``statuses`` and ``None`` filters mean "any"; ``search`` matches a
    workflow id, a trace id, or any span attribute value (case-insensitive).
    """
    with scoped_to_window(con, since=since):
        return _workflow_list(con, since, statuses, workflow_type, service, search, limit)


def _workflow_list(
    con: duckdb.DuckDBPyConnection,
    since: dt.datetime | None,
    statuses: tuple[str, ...],
    workflow_type: str | None,
    service: str | None,
    search: str | None,
    limit: int,
) -> pd.DataFrame:
    return query_frame(
        con,
        "workflow_list",
        {
            "since": window_start(since),
            "statuses": list(statuses),
            "workflow_type": workflow_type,
            "service": service,
            "search": (search or "").strip() or None,
            "limit": limit,
        },
    )


def workflow_types(con: duckdb.DuckDBPyConnection) -> list[str]:
    return query_frame(con, "workflow_types")["workflow_type"].tolist()


def service_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    return query_frame(con, "service_names")["service"].tolist()


def workflow_counts(
    con: duckdb.DuckDBPyConnection, *, since: dt.datetime | None = None
) -> dict[tuple[str, str | None], int]:
    """How many runs ``list_workflows`` could list over the window from ``since`` (None:
    the whole store), by ``(status, workflow_type)``."""
    with scoped_to_window(con, since=since):  # the view reads the spans once, not per reference
        rows = con.execute(query_text("workflow_counts"), {"since": window_start(since)}).fetchall()
    return {(status, workflow_type): runs for status, workflow_type, runs in rows}
