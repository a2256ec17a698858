"""The SQL console's sandbox: read statements only, over this store's views only.

A sandbox is a connection that already holds every view, then loses the right
to touch anything else: file access is limited to the store directory, external
access and extension loading are off, and the configuration is locked so no
statement can undo it. On top of DuckDB's own guard, each statement is parsed
first and only a single ``SELECT`` (or ``EXPLAIN`` of one) may run, because
DuckDB would still let ``COPY ... TO`` write inside the store directory, and
``EXPLAIN ANALYZE`` executes what it explains.

Every run gets its own cursor, a row cap and a time limit (``interrupt()``).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from correlator.queries import reads_spans, scoped_to_store
from instrumentation.errors import ChoreoscopeError
from store import keyword_column_hint, read_retrying, statement_kind

DEFAULT_ROW_CAP = 10_000
DEFAULT_TIME_LIMIT_S = 10.0
DEFAULT_MEMORY_LIMIT = "1GB"

_T = duckdb.StatementType
_WHY_REFUSED: dict[object, str] = {
    _T.COPY: "COPY reads or writes files; the console only reads the store's views "
    "(download results with the CSV and Parquet buttons instead)",
    _T.EXPORT: "EXPORT DATABASE writes files; the console only reads the store's views",
    _T.ATTACH: "ATTACH opens other databases; the console reads only this store's views",
    _T.DETACH: "DETACH changes the attached databases; the console only reads",
    _T.LOAD: "INSTALL and LOAD are refused: the console cannot add extensions",
    _T.SET: "SET, RESET, PRAGMA and USE are refused: the console's configuration is locked",
    _T.VARIABLE_SET: "SET VARIABLE is refused: the console's configuration is locked",
    _T.PRAGMA: "PRAGMA (and IMPORT DATABASE) is refused: the console's configuration is locked",
    _T.CALL: "CALL is refused: the console runs only SELECT statements",
    _T.MULTI: "this statement (e.g. PIVOT) runs as several statements; write it as one "
    "SELECT (PIVOT can be written with FILTER or CASE)",
}
_DDL_DML = {
    _T.CREATE,
    _T.CREATE_FUNC,
    _T.DROP,
    _T.ALTER,
    _T.INSERT,
    _T.UPDATE,
    _T.DELETE,
    _T.MERGE_INTO,
    _T.VACUUM,
    _T.TRANSACTION,
    _T.PREPARE,
    _T.EXECUTE,
    _T.COPY_DATABASE,
}


class QueryRefusedError(ChoreoscopeError):
    """The console will not run this text; the message says why and what to do."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"refused: {reason}")


class QueryFailedError(ChoreoscopeError):
    """The statement was allowed but DuckDB could not run it (syntax, names, types)."""


class QueryTimeoutError(ChoreoscopeError):
    """The statement ran past the console's time limit and was interrupted."""

    transient = True

    def __init__(self, *, time_limit_s: float) -> None:
        self.time_limit_s = time_limit_s
        super().__init__(
            f"the query ran longer than {time_limit_s:g} s and was stopped: narrow it "
            "with WHERE on start_time or a LIMIT"
        )


@dataclass(frozen=True)
class QueryResult:
    """Rows of one console query, at most ``row_cap`` of them."""

    table: pa.Table
    truncated: bool
    row_cap: int
    elapsed_s: float


def lock_down(
    con: duckdb.DuckDBPyConnection,
    *,
    store_dir: str | Path,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> duckdb.DuckDBPyConnection:
    """Turn a connection whose views are already built into a sandbox, for good.

    Use a connection of its own (a database instance of its own): the lock is
    global to the database, and cannot be lifted.
    """
    store = str(Path(store_dir).resolve()).replace("'", "''")
    # DuckDB always allows its spill directory (by default ./.tmp under the working
    # directory): give it an empty private one instead.
    spill = tempfile.mkdtemp(prefix="choreoscope-sql-spill-")
    # removed with the connection (or at exit): a dashboard makes one per session
    weakref.finalize(con, shutil.rmtree, spill, ignore_errors=True)
    quoted = spill.replace("'", "''")
    con.execute(f"SET temp_directory = '{quoted}'")
    con.execute(f"SET allowed_directories = ['{store}']")
    con.execute("SET enable_external_access = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET GLOBAL TimeZone = 'UTC'")  # for every cursor a query runs on
    con.execute("SET lock_configuration = true")
    return con


def check_read_only(sql: str) -> str:
    """The text's single read statement, or ``QueryRefusedError`` saying why not."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        hint = keyword_column_hint(sql)
        raise QueryFailedError(
            f"DuckDB cannot parse this query: {e}" + (f"\n\n{hint}" if hint else "")
        ) from None
    if not statements:
        raise QueryRefusedError("there is no statement to run; write a SELECT")
    if len(statements) > 1:
        raise QueryRefusedError(
            f"the console runs one statement at a time and this text holds "
            f"{len(statements)}; run them one by one"
        )
    statement = statements[0]
    _refuse_unless_select(statement)
    return statement.query


def _refuse_unless_select(statement: duckdb.Statement) -> None:
    kind = statement_kind(statement)  # EXPLAIN ANALYZE executes what it explains
    if kind == _T.SELECT:
        return
    if statement.type == _T.EXPLAIN:
        raise QueryRefusedError("EXPLAIN is allowed only for a SELECT")
    if kind in _DDL_DML:
        raise QueryRefusedError(
            "the console is read-only: DDL and DML (CREATE, DROP, ALTER, INSERT, "
            "UPDATE, DELETE, transactions) are refused; write a SELECT over the views"
        )
    raise QueryRefusedError(
        _WHY_REFUSED.get(kind, f"{kind} statements are refused; the console runs SELECT only")
    )


def run_read_query(
    sandbox: duckdb.DuckDBPyConnection,
    sql: str,
    *,
    row_cap: int = DEFAULT_ROW_CAP,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> QueryResult:
    """Run one read statement on its own cursor of ``sandbox``, capped in rows and time."""
    query = check_read_only(sql)
    cursor = sandbox.cursor()
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        cursor.interrupt()

    timer = threading.Timer(time_limit_s, stop)
    started = time.perf_counter()
    timer.start()
    try:
        table, truncated = read_retrying(lambda: _fetch_scoped(cursor, query, row_cap=row_cap))
    except duckdb.PermissionException as e:
        raise QueryRefusedError(
            "the console may read files only inside the store directory, and cannot "
            f"reach the network or install extensions (DuckDB said: {_first_line(e)})"
        ) from None
    except duckdb.InvalidInputException as e:
        if "configuration has been locked" in str(e):
            raise QueryRefusedError("the console's configuration is locked") from None
        raise QueryFailedError(f"DuckDB could not run the query: {e}") from None
    except duckdb.Error as e:
        if timed_out.is_set():
            raise QueryTimeoutError(time_limit_s=time_limit_s) from None
        raise QueryFailedError(f"DuckDB could not run the query: {e}") from None
    finally:
        timer.cancel()
        cursor.close()
    return QueryResult(
        table=table,
        truncated=truncated,
        row_cap=row_cap,
        elapsed_s=time.perf_counter() - started,
    )


def _fetch_scoped(
    cursor: duckdb.DuckDBPyConnection, query: str, *, row_cap: int
) -> tuple[pa.Table, bool]:
    """A query over the views over spans reads the store once (scoped_to_store)."""
    with scoped_to_store(cursor) if reads_spans(query) else contextlib.nullcontext():
        return _fetch_capped(cursor, query, row_cap=row_cap)


def _fetch_capped(
    cursor: duckdb.DuckDBPyConnection, query: str, *, row_cap: int
) -> tuple[pa.Table, bool]:
    reader = cursor.sql(query).to_arrow_reader(min(row_cap + 1, 100_000))
    batches: list[pa.RecordBatch] = []
    rows = 0
    for batch in reader:
        batches.append(batch)
        rows += batch.num_rows
        if rows > row_cap:
            break
    table = pa.Table.from_batches(batches, schema=reader.schema)
    return table.slice(0, row_cap), rows > row_cap


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]
