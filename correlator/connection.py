"""Read connections with the correlator's views over the trace store."""

from __future__ import annotations

from pathlib import Path

import duckdb

from correlator.findings import ensure_findings
from store import StoreLayout, open_store


def connect(data_dir: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every view: the store's and the correlator's.

    ``messages``, ``workflows``, ``hops`` and ``edges`` are computed from the spans at
    query time; ``anomalies`` and workflow statuses are the correlator's latest
    findings (empty until ``choreoscope correlate`` has run once).
    """
    layout = StoreLayout.at(data_dir)
    layout.check_version()
    ensure_findings(layout)
    return open_store(layout.root, extra_packages=["correlator"])
