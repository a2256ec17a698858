"""Read connections with the correlator's views over the trace store."""

from __future__ import annotations

from pathlib import Path

import duckdb

from correlator.findings import ensure_findings
from store import StoreLayout, open_store
from store.spill import SpillDirectory, spill_into_store


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


def full_pass_connection(
    layout: StoreLayout, *, memory_limit: int
) -> tuple[duckdb.DuckDBPyConnection, SpillDirectory]:
    """A connection with the correlator's views, set up for passes over all history:
    past ``memory_limit`` bytes it spills to a directory of its own under the store
    (removed with it: ``SpillDirectory.remove`` once closed)."""
    con = open_store(layout.root, extra_packages=["correlator"])
    con.execute("SET memory_limit = ?", [f"{int(memory_limit)}B"])
    spill = spill_into_store(con, layout=layout, owner="correlator")
    con.execute("SET enable_object_cache = true")
    # results are keyed, never read in arrival order: let DuckDB skip keeping it
    con.execute("SET preserve_insertion_order = false")
    # a pass writes and replaces ~1 GB of temp tables: at the default 16 MB
    # threshold DuckDB checkpoints (and vacuums) in the middle of a statement, which
    # cost ~0.65 s of a 1M-span cold pass
    con.execute("SET checkpoint_threshold = '1TB'")
    return con, spill
