"""Running the readers' ``.sql`` files of this folder with named parameters.

Each query is one file here, loaded with ``importlib.resources``; values are
bound as ``$name`` parameters, never formatted in.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from importlib import resources
from typing import Any

import duckdb
import pandas as pd

# "No window" is bound as the epoch, so every query can filter with a plain >=.
BEGINNING = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@cache
def query_text(name: str) -> str:
    """The text of ``<name>.sql`` in this folder."""
    return (resources.files(__package__) / f"{name}.sql").read_text(encoding="utf-8")


def query_frame(
    con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Run ``<name>.sql`` on ``con`` and return its rows as a DataFrame."""
    return con.execute(query_text(name), params or {}).df()


def window_start(since: dt.datetime | None) -> dt.datetime:
    """The bound value of a time window that starts at ``since`` (None: all time)."""
    return BEGINNING if since is None else since
