"""`choreoscope sql`: run a query over the trace store and print the result."""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import datetime as dt
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from choreoscope.settings import add_flags
from choreoscope.time_window import parse_window, window_begins
from instrumentation.errors import ChoreoscopeError
from store import first_keyword, keyword_column_hint, read_retrying, statement_kind

ORDER = 70
FORMATS = ("table", "csv", "json", "parquet")
MAX_CELL_CHARS = 60
# a table is for reading: past this many rows it stops and says how to get them all
# (the dashboard's SQL console caps its results too)
DEFAULT_MAX_ROWS = 1_000

DESCRIPTION = """\
Run one SQL query over the trace store, read-only, while the collector writes.
Table cells are cut at 60 characters, and a table stops at 1,000 rows
(--max-rows); --format csv, json or parquet prints every row, whole.
Views: spans (one row per span), spans_raw, bus_events, rejected, heartbeats,
consumer_lag (JetStream consumers' backlogs, sampled every 10 s),
and the correlator's: messages, workflows, anomalies, edges, hops,
workflow_status, choreography_steps, choreography_follows, heartbeat_sequence,
deliveries_seen (DESIGN.md lists their columns).

  choreoscope sql "select service_name, count(*) from spans group by 1"
  choreoscope sql --format json "select * from workflows where status='stalled'"
  choreoscope sql -o spans.parquet "select * from spans"   # format from suffix
  echo "select count(*) from rejected" | choreoscope sql
  choreoscope sql --file report.sql --format csv > report.csv
  choreoscope sql --since 24h "select * from hops where queue_wait_ms > 1000"

A query over the correlator's views over spans (messages, workflows, hops,
edges) reads every stored span once; with --since, only the runs active in
that window, and the stalled or in-flight ones however old (the spans view
itself is not cut).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sql",
        help="query the trace store with SQL (table, CSV, JSON or Parquet)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_flags(p, "data", "log_level")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="output format (default: from the -o file's .csv, .json or .parquet suffix, "
        "else table)",
    )
    p.add_argument("--file", type=Path, help="read the query from this file")
    p.add_argument(
        "--max-rows",
        type=_row_cap,
        default=DEFAULT_MAX_ROWS,
        metavar="N",
        help=f"the table shows at most N rows (default: {DEFAULT_MAX_ROWS:,}; 0: all); "
        "csv, json and parquet hold every row",
    )
    p.add_argument(
        "-o", "--output", type=Path, help="write to this file instead of standard output"
    )
    p.add_argument(
        "--since",
        type=parse_window,
        default=None,
        metavar="DURATION",
        help="the correlator's views over spans see the runs active within this long, "
        "like 24h or 7d, and the stuck ones (default: all, which reads every span)",
    )
    p.add_argument("query", nargs="?", help="the query; '-' or none reads standard input")
    p.set_defaults(handler=run)


def _row_cap(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a row count: write 0 or more")
    return value


def read_query(args: argparse.Namespace) -> str:
    if args.file is not None:
        if args.query:
            raise ChoreoscopeError("give the query as an argument or with --file, not both")
        try:
            return args.file.read_text(encoding="utf-8")
        except OSError as e:
            raise ChoreoscopeError(f"cannot read the query file {args.file}: {e}") from e
    if args.query and args.query != "-":
        return args.query
    if sys.stdin.isatty():
        raise ChoreoscopeError(
            'no query: write one as an argument (choreoscope sql "select count(*) from spans"), '
            "with --file, or on standard input"
        )
    return sys.stdin.read()


def open_connection(data: Path) -> duckdb.DuckDBPyConnection:
    """Every view, in-memory: the correlator's connection when it is installed."""
    try:
        from correlator import connect
    except ImportError:
        from store import open_store

        return open_store(data)
    return connect(data)


# what a query may be: it reads (PIVOT, which DuckDB runs as several statements,
# and PRAGMA or CALL of a table function read too)
READING = {
    duckdb.StatementType.SELECT,
    duckdb.StatementType.EXPLAIN,
    duckdb.StatementType.PRAGMA,
    duckdb.StatementType.CALL,
    duckdb.StatementType.MULTI,
}


def one_reading_statement(text: str) -> str:
    """``text`` when it is one statement that reads, else a ChoreoscopeError saying
    what to do. Only the last statement's result could be printed, and a statement
    that writes (COPY TO, CREATE) does not belong in a read-only command."""
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as e:
        hint = keyword_column_hint(text)
        raise ChoreoscopeError(
            f"the query cannot be parsed: {e}" + (f"\n{hint}" if hint else "")
        ) from None
    if not statements:
        raise ChoreoscopeError("the query is empty")
    if len(statements) > 1:
        raise ChoreoscopeError(
            f"the text holds {len(statements)} statements; run one query at a time"
        )
    kind = statement_kind(statements[0])  # EXPLAIN ANALYZE runs what it explains
    if kind is None:
        raise ChoreoscopeError(
            "choreoscope sql cannot tell what this EXPLAIN would run: write "
            "EXPLAIN [ANALYZE] followed by one SELECT"
        )
    if kind not in READING:
        raise ChoreoscopeError(
            f"choreoscope sql only reads, and {first_keyword(text) or kind.name} is no read: "
            "write a SELECT, and save its result with --format csv|json|parquet -o FILE"
        )
    return text


def output_format(*, fmt: str | None, output: Path | None) -> str:
    """``fmt`` when given, else the one the output file's suffix names (``-o
    report.csv`` writes CSV, not a drawn table), else a table."""
    if fmt is not None:
        return fmt
    suffix = output.suffix.lower().lstrip(".") if output is not None else ""
    return suffix if suffix in FORMATS else "table"


def run(args: argparse.Namespace) -> int:
    fmt = output_format(fmt=args.format, output=args.output)
    if args.output is not None and not args.output.parent.is_dir():  # before the query runs
        raise ChoreoscopeError(
            f"cannot write {args.output}: the folder {args.output.parent} does not exist"
        )
    query = one_reading_statement(read_query(args).strip().rstrip(";").strip())
    con = open_connection(args.data)
    try:
        # again if a file changed under it: the correlator rewrote a findings
        # file, or compaction retired a segment, while the query read it
        columns, rows, table, total = read_retrying(
            lambda: _run(
                con,
                query,
                arrow=fmt == "parquet",
                since=window_begins(args.since),
                max_rows=args.max_rows if fmt == "table" else 0,
            )
        )
    except duckdb.Error as e:
        raise ChoreoscopeError(
            f"the query failed: {e}\nViews you can query: {', '.join(_views(con))}"
        ) from None
    write_result(columns=columns, rows=rows, table=table, fmt=fmt, output=args.output, total=total)
    return 0


def _run(
    con: duckdb.DuckDBPyConnection,
    query: str,
    *,
    arrow: bool,
    since: dt.datetime | None = None,
    max_rows: int = 0,
) -> tuple[list[str], list[tuple[Any, ...]] | None, pa.Table | None, int]:
    """The result's columns, its rows (its first ``max_rows`` when not 0) or Arrow
    table, and how many rows the query returned in all."""
    with _store_scope(con, query, since=since):
        if arrow:  # straight from a relation: from execute's result, Arrow is a copy
            table = con.sql(query).to_arrow_table()
            return table.column_names, None, table, table.num_rows
        result = con.execute(query)
        columns = [d[0] for d in result.description or []]
        if not max_rows:
            rows = result.fetchall()
            return columns, rows, None, len(rows)
        rows = result.fetchmany(max_rows)
        return columns, rows, None, len(rows) + _count_the_rest(result)


def _count_the_rest(result: duckdb.DuckDBPyConnection) -> int:
    """The rows ``result`` has left, counted in Arrow batches: made into Python
    tuples, 3M rows took seconds and their memory, to print none of them."""
    with warnings.catch_warnings():  # the copy it warns of is of batches, dropped at once
        warnings.simplefilter("ignore", UserWarning)
        reader = result.to_arrow_reader(100_000)
    return sum(batch.num_rows for batch in reader)


def _store_scope(
    con: duckdb.DuckDBPyConnection, query: str, *, since: dt.datetime | None
) -> contextlib.AbstractContextManager[object]:
    """A query over the correlator's views over spans reads the store (or the window
    from ``since``) once, into a temporary table, instead of once for each place the
    views name the spans."""
    try:
        from correlator.queries import reads_spans, scoped_to_window
    except ImportError:
        return contextlib.nullcontext()
    return scoped_to_window(con, since=since) if reads_spans(query) else contextlib.nullcontext()


# the views DESIGN.md's SQL contract names (the help lists them too); the others
# are the correlator's intermediate steps, which may change
DOCUMENTED_VIEWS = (
    "spans", "spans_raw", "bus_events", "rejected", "heartbeats", "consumer_lag",
    "messages", "workflows", "anomalies", "edges", "hops",
    "workflow_status", "choreography_steps", "choreography_follows",
    "heartbeat_sequence", "deliveries_seen",
)  # fmt: skip


def _views(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute("select view_name from duckdb_views() where not internal").fetchall()
    present = {r[0] for r in rows}
    return [v for v in DOCUMENTED_VIEWS if v in present]


def write_result(
    *,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]] | None,
    table: pa.Table | None,
    fmt: str,
    output: Path | None,
    total: int | None = None,
) -> None:
    """Write the result; ``total``: how many rows the query returned, when ``rows``
    holds only the first ones (a table stops at ``--max-rows``)."""
    if fmt == "parquet":
        assert table is not None
        if output is None and sys.stdout.isatty():
            raise ChoreoscopeError("Parquet is binary: pass -o FILE, or redirect standard output")
        pq.write_table(table, str(output) if output else sys.stdout.buffer, compression="zstd")
        return
    assert rows is not None
    stream: IO[str] = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout  # noqa: SIM115
    try:
        if fmt == "json":
            json.dump([dict(zip(columns, row, strict=True)) for row in rows], stream,
                      default=_json_value, ensure_ascii=False)  # fmt: skip
            stream.write("\n")
        elif fmt == "csv":
            writer = csv.writer(stream, lineterminator="\n")  # as the other formats end lines
            writer.writerow(columns)
            writer.writerows([[_cell(v, limit=None) for v in row] for row in rows])
        else:
            stream.write(render_table(columns, rows, total=total))
    finally:
        if output:
            stream.close()


def render_table(
    columns: Sequence[str], rows: list[tuple[Any, ...]], *, total: int | None = None
) -> str:
    """A plain-text table; long cells are cut at ``MAX_CELL_CHARS`` with an ellipsis,
    and rows past the first ``len(rows)`` of ``total`` left out: the count line says
    so, and how to see them whole."""
    cells = [[_cell(v, limit=MAX_CELL_CHARS) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [line, _row(columns, widths), line, *(_row(r, widths) for r in cells), line]
    count = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    if total is not None and total > len(rows):
        count = (
            f"{len(rows):,} of {total:,} rows shown, {total - len(rows):,} left out: "
            "--format csv -o FILE writes them all, or --max-rows N shows more (0: all)"
        )
    cut = sum(c.endswith("…") for row in cells for c in row)
    if cut:
        count += (
            f"; {cut} cell{'s' if cut != 1 else ''} cut at {MAX_CELL_CHARS} characters: "
            "--format json or csv prints them whole"
        )
    out.append(f"({count})")
    return "\n".join(out) + "\n"


def _row(values: Sequence[str], widths: Sequence[int]) -> str:
    return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"


def _cell(value: Any, *, limit: int | None) -> str:
    if value is None:
        return "" if limit is None else "NULL"
    if isinstance(value, bytes | bytearray | memoryview):
        text = base64.b64encode(bytes(value)).decode("ascii")
    elif isinstance(value, dt.datetime | dt.date | dt.time):
        text = value.isoformat()
    elif isinstance(value, list | dict):  # a LIST, STRUCT or MAP: as JSON, not Python
        text = json.dumps(value, default=_json_value, ensure_ascii=False)
    else:
        text = str(value)
    if limit is not None:
        text = text.replace("\n", " ")
        if len(text) > limit:
            text = text[: limit - 1] + "…"
    return text


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)  # Decimal, UUID, timedelta, and anything else
