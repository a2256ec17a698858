"""What the store holds: whether it is empty, and the columns of its views."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from correlator.queries.query_files import query_frame

CONTRACT_VIEWS = (
    "workflows",
    "anomalies",
    "messages",
    "hops",
    "edges",
    "spans",
    "bus_events",
    "heartbeats",
    "consumer_lag",
    "rejected",
)


@dataclass(frozen=True)
class StoreCounts:
    spans: int
    heartbeats: int
    judged: int = 0  # workflows the correlator gave a status; 0 before its first pass

    @property
    def empty(self) -> bool:
        return self.spans == 0 and self.heartbeats == 0


def store_counts(con: duckdb.DuckDBPyConnection) -> StoreCounts:
    row = query_frame(con, "store_counts").iloc[0]
    return StoreCounts(
        spans=int(row["spans"]), heartbeats=int(row["heartbeats"]), judged=int(row["judged"])
    )


def view_columns(
    con: duckdb.DuckDBPyConnection, *, views: tuple[str, ...] = CONTRACT_VIEWS
) -> pd.DataFrame:
    """``view, column, type`` of each view present, in the contract's order."""
    return query_frame(con, "view_columns", {"views": list(views)})
