"""The trace store: Parquet segments in a directory, read through DuckDB views.

from store import StoreLayout, open_store

layout = StoreLayout.at("choreoscope-data")
layout.ensure()                      # a writer creates the tree and seeds
con = open_store("choreoscope-data") # a reader: in-memory DuckDB with the views
"""

from store.connection import configure_connection, open_store
from store.layout import DEFAULT_DATA_DIR, StoreLayout, StoreVersionError
from store.quarantine import UnreadableSegmentError
from store.rereading import read_retrying
from store.schema import SCHEMA_VERSION, TABLES
from store.sql_hints import keyword_column_hint
from store.statement_kind import first_keyword, statement_kind

__all__ = [
    "DEFAULT_DATA_DIR",
    "SCHEMA_VERSION",
    "TABLES",
    "StoreLayout",
    "StoreVersionError",
    "UnreadableSegmentError",
    "configure_connection",
    "first_keyword",
    "keyword_column_hint",
    "open_store",
    "read_retrying",
    "statement_kind",
]
