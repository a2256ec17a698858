"""Read connections to the trace store.

``open_store`` builds the base views from this package's ``.sql`` files in a
fresh in-memory DuckDB connection, so any number of readers run beside the
collector without touching ``catalog.duckdb``'s lock. Higher floors add their
own views with ``extra_packages``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from instrumentation.errors import ChoreoscopeError
from store.layout import StoreLayout
from store.sql_files import view_statements


def configure_connection(con: duckdb.DuckDBPyConnection) -> None:
    """Settings every choreoscope connection shares: UTC end to end."""
    con.execute("SET TimeZone = 'UTC'")


def open_store(
    data_dir: str | Path, *, extra_packages: Sequence[str] = ()
) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the store's views (and those of ``extra_packages``).

    Raises ``ChoreoscopeError`` if there is no store there, or ``StoreVersionError``
    if it was written by another schema version.
    """
    layout = StoreLayout.at(data_dir)
    layout.check_version()
    try:
        layout.ensure_seeds()  # a table added since the store was created
    except OSError as e:
        raise ChoreoscopeError(
            f"the store at {layout.root} lacks a table this choreoscope reads, and it "
            f"cannot be added ({e}): run `choreoscope collect --data {layout.root}` once, "
            "with write access, to add it"
        ) from e
    con = duckdb.connect(":memory:")
    configure_connection(con)
    for package in ("store", *extra_packages):
        for statement in view_statements(package, layout):
            con.execute(statement)
    return con
