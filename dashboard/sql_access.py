"""The SQL console's sandboxed connection to the store, one per store directory."""

from __future__ import annotations

import duckdb
import streamlit as st

import correlator
from dashboard.sql_sandbox import lock_down


@st.cache_resource(show_spinner=False)
def sandbox_connection(data_dir: str) -> duckdb.DuckDBPyConnection:
    """A connection of its own with every view, locked to reading the store."""
    return lock_down(correlator.connect(data_dir), store_dir=data_dir)
