"""``<data>/catalog.duckdb``: every view (the store's and the correlator's) in one
DuckDB file, for ``duckdb -readonly`` and any other DuckDB client.

It holds only views over the Parquet segments, so it changes only when the view
text or the schema version does. It is then rebuilt under a temporary name and
renamed over the old one: a reader holding the old file keeps reading it, and
no process ever needs write access to the file a reader has open.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from pathlib import Path

import duckdb

from correlator import ensure_findings
from store import SCHEMA_VERSION, StoreLayout, configure_connection
from store.durable_files import ABANDONED_AFTER_S, replacing
from store.sql_files import sql_files

log = logging.getLogger(__name__)

VIEW_PACKAGES = ("store", "correlator")
META_TABLE = "choreoscope_catalog"


def catalog_views(layout: StoreLayout) -> list[tuple[str, str]]:
    """``(package/file, statement)`` for every view file, store first."""
    store = str(layout.root).replace("'", "''")
    views = []
    for package in VIEW_PACKAGES:
        try:
            files = sql_files(package)
        except (FileNotFoundError, ModuleNotFoundError, NotADirectoryError):
            continue  # a package without views yet
        views += [(f"{package}/sql/{name}", text.replace("{store}", store)) for name, text in files]
    return views


def _digest(views: list[tuple[str, str]]) -> str:
    text = f"schema {SCHEMA_VERSION}\n" + "\n".join(f"{n}\n{s}" for n, s in views)
    return hashlib.sha256(text.encode()).hexdigest()


def catalog_is_current(layout: StoreLayout, digest: str) -> bool:
    if not layout.catalog.exists():
        return False
    try:
        con = duckdb.connect(str(layout.catalog), read_only=True)
    except duckdb.Error:
        return False
    try:
        row = con.execute(f"SELECT views_sha256 FROM {META_TABLE}").fetchone()
    except duckdb.Error:
        return False
    finally:
        con.close()
    return row is not None and row[0] == digest


def _abandoned_temps(layout: StoreLayout) -> list[Path]:
    """Temp catalogs (and their WAL) of writers killed over an hour ago."""
    now = time.time()
    found = []
    for path in layout.root.glob(f".{layout.catalog.name}.*.tmp*"):
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > ABANDONED_AFTER_S:
                found.append(path)
    return found


def write_catalog(layout: StoreLayout) -> bool:
    """Bring ``catalog.duckdb`` up to date; True if it was (re)written."""
    ensure_findings(layout)  # the correlator's views read its findings files
    views = catalog_views(layout)
    digest = _digest(views)
    if catalog_is_current(layout, digest):
        return False
    # a temp name of its own: after an upgrade `collect` and `correlate`, started
    # together, both found the catalog outdated and wrote one temp file, each
    # deleting the other's: both failed and readers kept the old views
    tmp = layout.catalog.with_name(f".{layout.catalog.name}.{os.getpid()}.tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal"), *_abandoned_temps(layout)):
        leftover.unlink(missing_ok=True)
    with replacing(layout.catalog, tmp=tmp):
        con = duckdb.connect(str(tmp))
        try:
            configure_connection(con)
            skipped = []
            for name, statement in views:
                try:
                    con.execute(statement)
                except duckdb.Error as e:
                    if name.startswith("store/"):
                        raise
                    skipped.append(name)
                    log.error("catalog: %s could not be created (%s); skipped", name, e)
            con.execute(
                f"CREATE TABLE {META_TABLE} AS SELECT ?::INTEGER AS schema_version, "
                "?::VARCHAR AS views_sha256, now() AS written_at",
                [SCHEMA_VERSION, digest if not skipped else "incomplete"],
            )
            con.execute("CHECKPOINT")
        finally:
            con.close()
    log.info("wrote %s with %d views", layout.catalog, len(views))
    return True
