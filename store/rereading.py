"""Reading again when a file changed under a query.

DuckDB can open one path more than once within a query (each place the views name
the file), and a file replaced in between is read with the old one's layout
("TProtocolException: Invalid data", "Could not read enough bytes", "ZSTD
Decompression failure", ...). No store file is replaced in place any more (the
correlator's findings are immutable generations: ``correlator.findings_files``), but
compaction retiring a segment that a long query listed fails so ("No such file"), and
passes on a second read, so the project's readers run their queries through
``read_retrying``.

A file damaged on disk fails the same ways, and would on every read: before reading
again, the file the error names is checked, and if it still cannot be read the
error is ``UnreadableSegmentError`` (``store.quarantine``), at once, saying which
file and what to do. Only a failing read pays for that check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import duckdb

from store.quarantine import damaged_file_error

log = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 4


def read_retrying(read: Callable[[], T], *, attempts: int = ATTEMPTS) -> T:
    """``read()``, run again (up to ``attempts`` times in all) while it fails as a
    read of a file that changed under it fails. Any other error is raised at once;
    a file that cannot be read now either raises ``UnreadableSegmentError``."""
    for attempt in range(1, attempts + 1):
        try:
            return read()
        except duckdb.Error as e:
            if not file_changed_under(e):
                raise
            # its footer first (cheap); on the last attempt, the whole file
            damaged = damaged_file_error(e, whole=attempt == attempts)
            if damaged is not None:
                raise damaged from e
            if attempt == attempts:
                raise
            log.debug("a file changed under a read (%s); reading again", e)
    raise AssertionError("unreachable")


def file_changed_under(error: duckdb.Error) -> bool:
    """Whether ``error`` is one DuckDB raises reading a file replaced or removed
    mid-query: an I/O error, or a Parquet file that does not parse as listed. A
    query's own mistakes (syntax, names, types it asked for) are other classes."""
    return type(error) is duckdb.Error or isinstance(
        error, duckdb.IOException | duckdb.ConversionException | duckdb.InvalidInputException
    )
