"""Writing immutable Parquet segments: temp name, fsync, rename.

A segment is durable once ``write_segment`` returns: the file and its directory
entry are fsynced. Only then may the collector ack the JetStream messages it came
from. DuckDB writes the Parquet (zstd) straight from the Arrow table.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa

from store.layout import StoreLayout


class SegmentWriter:
    """Writes segments of any store table; one instance per writing process."""

    def __init__(self, *, layout: StoreLayout, writer_id: str | None = None) -> None:
        self.layout = layout
        self.writer_id = writer_id or uuid.uuid4().hex[:12]
        self._seq = itertools.count()
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET TimeZone = 'UTC'")

    def write(self, table: str, rows: pa.Table, *, at: dt.datetime | None = None) -> Path:
        """Write ``rows`` as one segment of ``table`` and return its path, durable."""
        at = at or dt.datetime.now(dt.UTC)
        folder = self.layout.partition_dir(table, at)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{at:%Y%m%dT%H%M%S%f}-{self.writer_id}-{next(self._seq):06d}.parquet"
        final = folder / name
        tmp = folder / f".{name}.tmp"
        try:
            self._con.register("segment_rows", rows)
            try:
                self._con.execute(
                    "COPY (SELECT * FROM segment_rows) TO ? "
                    "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)",
                    [str(tmp)],
                )
            finally:
                self._con.unregister("segment_rows")
            _fsync_file(tmp)
            tmp.replace(final)
            _fsync_dir(folder)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return final

    def close(self) -> None:
        self._con.close()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
