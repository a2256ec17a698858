"""Writing immutable Parquet segments: temp name, fsync, rename.

A segment is durable once ``write`` returns: the file and its directory entry are
fsynced. Only then may the collector ack the JetStream messages it came from.
DuckDB writes the Parquet (zstd) straight from the Arrow table, through the
table's projection in ``collector/sql/<table>_segment.sql`` when there is one.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import uuid
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa

from store.durable_files import replacing
from store.layout import StoreLayout

ROW_GROUP_SIZE = 122_880


class SegmentWriter:
    """Writes segments of any store table; one instance per writing thread."""

    def __init__(
        self,
        *,
        layout: StoreLayout,
        writer_id: str | None = None,
        threads: int | None = None,
        memory_limit: str | None = None,
    ) -> None:
        self.layout = layout
        self.writer_id = writer_id or uuid.uuid4().hex[:12]
        self._seq = itertools.count()
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET TimeZone = 'UTC'")
        if threads:
            self._con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self._con.execute("SET memory_limit = ?", [memory_limit])

    def write(
        self, table: str, rows: pa.Table, *, at: dt.datetime | None = None, name: str | None = None
    ) -> Path:
        """Write ``rows`` as one segment of ``table`` and return its path, durable.

        Raises ``OSError`` (or ``duckdb.IOException``) when the store is not writable;
        nothing is left behind then.
        """
        at = at or dt.datetime.now(dt.UTC)
        folder = self.layout.partition_dir(table, at)
        folder.mkdir(parents=True, exist_ok=True)
        name = name or f"{at:%Y%m%dT%H%M%S%f}-{self.writer_id}-{next(self._seq):06d}.parquet"
        return self.write_file(folder / name, rows, projection=_projection(table))

    def write_file(self, final: Path, rows: pa.Table, *, projection: str | None = None) -> Path:
        """Write ``rows`` (or a query over ``segment_rows``) durably at ``final``."""
        with replacing(final) as tmp:
            self._con.register("segment_rows", rows)
            try:
                self._con.execute(
                    f"COPY ({projection or 'SELECT * FROM segment_rows'}) TO ? "
                    f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_SIZE})",
                    [str(tmp)],
                )
            finally:
                self._con.unregister("segment_rows")
        return final

    def close(self) -> None:
        self._con.close()


@functools.cache
def _projection(table: str) -> str | None:
    sql = resources.files("collector") / "sql" / f"{table}_segment.sql"
    return sql.read_text(encoding="utf-8") if sql.is_file() else None
