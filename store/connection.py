"""Read connections to the trace store.

``open_store`` builds the base views from this package's ``.sql`` files in a
fresh in-memory DuckDB connection, so any number of readers run beside the
collector without touching ``catalog.duckdb``'s lock. Higher floors add their
own views with ``extra_packages``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from store.layout import StoreLayout
from store.quarantine import damaged_file_error
from store.rereading import file_changed_under
from store.schema import TABLES
from store.sql_files import view_statements

log = logging.getLogger(__name__)


def configure_connection(con: duckdb.DuckDBPyConnection) -> None:
    """Settings every choreoscope connection shares: UTC end to end, for its
    cursors too (a cursor does not inherit the connection's own SET: it read times in
    the machine's zone)."""
    con.execute("SET GLOBAL TimeZone = 'UTC'")


def open_store(
    data_dir: str | Path, *, extra_packages: Sequence[str] = ()
) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the store's views (and those of ``extra_packages``).

    Raises ``ChoreoscopeError`` if there is no store there, ``StoreVersionError``
    if it was written by another schema version, or ``UnreadableSegmentError`` if
    one of its files is damaged.
    """
    layout = StoreLayout.at(data_dir)
    layout.check_version()
    unseeded = _seed_added_tables(layout)
    con = duckdb.connect(":memory:")
    configure_connection(con)
    for package in ("store", *extra_packages):
        for statement in view_statements(package, layout):
            if not any(f"/{table}/**" in statement for table in unseeded):
                _create_view(con, statement)
    for table in unseeded:  # read as empty, with its columns, by every cursor
        con.register("empty_seed", pa.Table.from_pylist([], schema=TABLES[table]))
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM empty_seed")
        con.unregister("empty_seed")
    return con


# A view is bound where a query uses it, not where it is created (DEFER_BINDING):
# binding the correlator's nested views at creation took ~0.5 s, which every reader
# (each command, the correlator's start) paid before its first query.
_VIEW = re.compile(r"\bCREATE OR REPLACE VIEW (\w+) AS\b")


def _create_view(con: duckdb.DuckDBPyConnection, statement: str) -> None:
    """Run a view's statement, its views bound on first use. A statement that opens
    files as it runs (a macro's) fails here if one is damaged: say which
    (``store.quarantine``)."""
    try:
        con.execute(_VIEW.sub(r"CREATE OR REPLACE VIEW \1 WITH (DEFER_BINDING) AS", statement))
    except duckdb.Error as e:
        damaged = damaged_file_error(e, whole=False) if file_changed_under(e) else None
        if damaged is not None:
            con.close()
            raise damaged from e
        raise


def _seed_added_tables(layout: StoreLayout) -> list[str]:
    """Give the tables added to the schema since the store was created their seed;
    return those that cannot have one here (a store this process may only read)."""
    try:
        layout.ensure_seeds()
    except OSError as e:
        missing = [table for table in TABLES if not layout.seed(table).exists()]
        log.warning(
            "the store at %s predates table(s) %s and cannot take their seed here (%s): "
            "they read as empty until `choreoscope collect` runs on it",
            layout.root, ", ".join(missing), e,
        )  # fmt: skip
        return missing
    return []
