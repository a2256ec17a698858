"""An SQL console result as the page shows and downloads it, whatever its columns.

A read can return what a table, pandas or Parquet cannot hold as it is: two columns
of one name (``SELECT w.*, a.* FROM workflows w JOIN anomalies a ...``), an
INTERVAL (``now() - max(start_time)``), a UNION. Names are made unique as DuckDB
makes them (``a``, ``a_1``), and a column one format cannot hold is given to it as
text, so the page shows the rows instead of a stack trace.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def with_unique_names(table: pa.Table) -> pa.Table:
    """``table`` with a repeated column name suffixed ``_1``, ``_2``... as DuckDB does."""
    taken = set(table.column_names)
    names: list[str] = []
    seen: set[str] = set()
    for name in table.column_names:
        unique, n = name, 0
        while unique in seen:
            n += 1
            unique = f"{name}_{n}"
            if unique in taken:
                unique = name  # keep counting past a name the query gave itself
        seen.add(unique)
        names.append(unique)
    return table.rename_columns(names)


def as_frame(table: pa.Table) -> pd.DataFrame:
    """The rows as a DataFrame; a column pandas cannot hold comes as its values' text,
    and an INTERVAL as a duration (pandas made it ``<DateOffset: days=…>`` objects)."""
    table = _intervals_as_durations(table)
    try:
        return table.to_pandas()
    except pa.ArrowException:
        return _as_text_where(table, _fails_in_pandas).to_pandas()


def _intervals_as_durations(table: pa.Table) -> pa.Table:
    """Each INTERVAL column as microseconds when it counts no months (a month has no
    fixed length: such a column is left as it is)."""
    for i, (name, column) in enumerate(zip(table.column_names, table.columns, strict=True)):
        if column.type != pa.month_day_nano_interval():
            continue
        values = column.to_pylist()
        if any(v is not None and v.months for v in values):
            continue
        micros = [
            None if v is None else v.days * 86_400_000_000 + v.nanoseconds // 1000 for v in values
        ]
        table = table.set_column(i, name, pa.array(micros, pa.duration("us")))
    return table


def parquet_bytes(table: pa.Table) -> tuple[bytes, list[str]]:
    """The rows as a Parquet file, and the columns Parquet could hold only as text."""
    texted = [name for name, column in zip(table.column_names, table.columns, strict=True)
              if _fails_in_parquet(name, column)]  # fmt: skip
    table = _as_text_where(table, lambda name, _: name in texted)
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue(), texted


def _as_text_where(table: pa.Table, fails: Callable[[str, pa.ChunkedArray], bool]) -> pa.Table:
    """``table`` with each column ``fails(name, column)`` replaced by its values' text."""
    for i, (name, column) in enumerate(zip(table.column_names, table.columns, strict=True)):
        if fails(name, column):
            text = pa.array(
                [None if v is None else str(v) for v in column.to_pylist()], pa.string()
            )
            table = table.set_column(i, name, text)
    return table


def _fails_in_pandas(name: str, column: pa.ChunkedArray) -> bool:
    try:
        pa.table({name: column.slice(0, 1)}).to_pandas()
    except pa.ArrowException:
        return True
    return False


def _fails_in_parquet(name: str, column: pa.ChunkedArray) -> bool:
    try:
        pq.write_table(pa.table({name: column.slice(0, 0)}), io.BytesIO())
    except pa.ArrowException:
        return True
    return False
