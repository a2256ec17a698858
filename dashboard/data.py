"""The dashboard's data access: cached calls of ``correlator.queries``.

One connection per store is held as a resource (building the views once); each
query runs on its own cursor, because a DuckDB connection is not thread-safe and
Streamlit serves sessions from several threads. Results are cached for a few
seconds, keyed on plain hashable filters, so a live refresh of several pages and
sessions costs one query per window.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import duckdb
import streamlit as st

import correlator
from correlator import queries
from store import read_retrying

CACHE_TTL_S = 4.0


@st.cache_resource(show_spinner=False)
def store_connection(data_dir: str) -> duckdb.DuckDBPyConnection:
    """The shared connection with every view of the store at ``data_dir``."""
    return correlator.connect(data_dir)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=512)
def read(query: str, data_dir: str, **filters: Hashable) -> Any:
    """``correlator.queries.<query>(cursor, **filters)``, cached for a few seconds."""
    if query not in queries.__all__ or not callable(getattr(queries, query)):
        raise ValueError(f"{query!r} is not a read function of correlator.queries")
    read_function = getattr(queries, query)

    def read_once() -> Any:
        with store_connection(data_dir).cursor() as cursor:
            return read_function(cursor, **filters)

    return read_retrying(read_once)  # again if a file changed under it (store.rereading)
