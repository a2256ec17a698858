"""Read functions of the Overview page: tiles, trends and the worst hops."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import duckdb
import pandas as pd

from correlator.queries.query_files import query_frame, window_start
from correlator.queries.scope import scoped_to_window

STUCK_AT_MOST = 20  # stuck runs the overview lists, most recent first


@dataclass(frozen=True)
class OverviewTiles:
    """Workflow counts by status and end-to-end latency in a time window."""

    started: int
    completed: int
    in_flight: int
    stalled: int
    failed: int
    p50_ms: float | None
    p95_ms: float | None


@dataclass(frozen=True)
class Overview:
    """Everything the Overview page shows, read over one scoped window."""

    tiles: OverviewTiles
    stuck: pd.DataFrame
    anomaly_counts: pd.DataFrame
    throughput: pd.DataFrame
    anomalies_over_time: pd.DataFrame
    worst_hops: pd.DataFrame


def overview(
    con: duckdb.DuckDBPyConnection,
    *,
    since: dt.datetime | None,
    bucket: dt.timedelta,
    stuck_limit: int = STUCK_AT_MOST,
    hops_limit: int = 10,
) -> Overview:
    """Tiles, the stuck runs, trends and the worst hops of the window, in one pass."""
    window = {"since": window_start(since)}
    with scoped_to_window(con, since=since):
        return Overview(
            tiles=_tiles(query_frame(con, "overview_tiles", window)),
            stuck=query_frame(
                con,
                "workflow_list",
                {
                    **window,
                    "statuses": ["stalled", "failed"],
                    "workflow_type": None,
                    "service": None,
                    "search": None,
                    "limit": stuck_limit,
                },
            ),
            anomaly_counts=query_frame(con, "anomaly_counts", window),
            throughput=query_frame(con, "throughput_over_time", {**window, "bucket": bucket}),
            anomalies_over_time=query_frame(
                con, "anomalies_over_time", {**window, "bucket": bucket}
            ),
            worst_hops=query_frame(con, "worst_hops", {"limit": hops_limit}),
        )


def overview_tiles(con: duckdb.DuckDBPyConnection, *, since: dt.datetime | None) -> OverviewTiles:
    with scoped_to_window(con, since=since):
        return _tiles(query_frame(con, "overview_tiles", {"since": window_start(since)}))


def _tiles(frame: pd.DataFrame) -> OverviewTiles:
    row = frame.iloc[0]
    return OverviewTiles(
        started=int(row["started"]),
        completed=int(row["completed"]),
        in_flight=int(row["in_flight"]),
        stalled=int(row["stalled"]),
        failed=int(row["failed"]),
        p50_ms=_number_or_none(row["p50_ms"]),
        p95_ms=_number_or_none(row["p95_ms"]),
    )


def anomaly_counts(con: duckdb.DuckDBPyConnection, *, since: dt.datetime | None) -> pd.DataFrame:
    """``kind, anomalies``: anomalies detected in the window and still open, by kind."""
    return query_frame(con, "anomaly_counts", {"since": window_start(since)})


def throughput_over_time(
    con: duckdb.DuckDBPyConnection, *, since: dt.datetime | None, bucket: dt.timedelta
) -> pd.DataFrame:
    """``at, status, workflows``: workflows started per bucket, by current status."""
    with scoped_to_window(con, since=since):
        return query_frame(
            con, "throughput_over_time", {"since": window_start(since), "bucket": bucket}
        )


def anomalies_over_time(
    con: duckdb.DuckDBPyConnection, *, since: dt.datetime | None, bucket: dt.timedelta
) -> pd.DataFrame:
    """``at, kind, state, anomalies``: anomalies detected per bucket, by kind and by
    ``state``, ``open`` or ``resolved``."""
    return query_frame(con, "anomalies_over_time", {"since": window_start(since), "bucket": bucket})


def worst_hops(
    con: duckdb.DuckDBPyConnection, *, since: dt.datetime | None, limit: int = 10
) -> pd.DataFrame:
    """The edges (over the window's traces) with the most drops, then errors, then p95."""
    with scoped_to_window(con, since=since):
        return query_frame(con, "worst_hops", {"limit": limit})


def _number_or_none(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number
