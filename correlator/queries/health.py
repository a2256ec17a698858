"""Read functions of the Choreography, Anomalies and Services pages."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from correlator.queries.query_files import query_frame, window_start
from correlator.queries.scope import scoped_to_window


def choreography_edges(
    con: duckdb.DuckDBPyConnection, *, since: dt.datetime | None
) -> pd.DataFrame:
    """Producer -> subject -> consumer edges over the window's traces: messages,
    latency quantiles, error and drop rates."""
    with scoped_to_window(con, since=since):
        return query_frame(con, "choreography_edges")


def choreography_model(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Expected consumers of each subject, learned and declared (``source``), side by side."""
    return query_frame(con, "choreography_model")


def choreography_transitions(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Which event follows which, per workflow type, learned and declared."""
    return query_frame(con, "choreography_transitions")


def anomaly_list(
    con: duckdb.DuckDBPyConnection,
    *,
    since: dt.datetime | None,
    kinds: tuple[str, ...] = (),
    include_resolved: bool = False,
    limit: int = 1000,
) -> pd.DataFrame:
    """Anomalies detected in the window (of ``kinds``, or all), grouped by kind.

    Resolved ones (a hung handler that finally finished) only with ``include_resolved``.
    """
    return query_frame(
        con,
        "anomaly_list",
        {
            "since": window_start(since),
            "kinds": list(kinds),
            "include_resolved": include_resolved,
            "limit": limit,
        },
    )


def service_liveness(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Each service instance's last heartbeat, whether it is alive, and its counters."""
    return query_frame(con, "service_liveness")


def consumer_lag_latest(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Each JetStream consumer's backlog and unacked messages, as last sampled."""
    return query_frame(con, "consumer_lag_latest")


def bus_event_counts(
    con: duckdb.DuckDBPyConnection, *, since: dt.datetime | None = None
) -> pd.DataFrame:
    """JetStream advisories (redeliveries, terminations, max deliveries) by consumer,
    recorded since ``since`` (None: all stored)."""
    return query_frame(con, "bus_event_counts", {"since": window_start(since)})
