"""The SQL console's sandbox: reads of the store work, everything else is refused."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

import correlator
from dashboard.example_queries import EXAMPLE_QUERIES
from dashboard.sql_sandbox import (
    QueryFailedError,
    QueryRefusedError,
    QueryTimeoutError,
    lock_down,
    run_read_query,
)
from tests.dashboard.fixture_store import (
    PARSED,
    SCORED,
    STALLED_WORKFLOW,
    SUBMITTED,
    build_store_of_many_segments,
)


@pytest.fixture(scope="module")
def sandbox(recruitment_store: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = lock_down(correlator.connect(recruitment_store), store_dir=recruitment_store)
    yield con
    con.close()


def test_views_and_the_stores_own_parquet_can_be_queried(sandbox, recruitment_store):
    workflows = run_read_query(sandbox, "SELECT count(*) AS n FROM workflows")
    assert workflows.table.column("n").to_pylist() == [9]
    direct = run_read_query(
        sandbox, f"SELECT count(*) AS n FROM read_parquet('{recruitment_store}/spans/**/*.parquet')"
    )
    assert direct.table.column("n").to_pylist()[0] > 0


@pytest.mark.parametrize("title", EXAMPLE_QUERIES)
def test_every_example_query_runs_in_the_sandbox(sandbox, title):
    result = run_read_query(sandbox, EXAMPLE_QUERIES[title])
    assert result.table.num_columns > 0


def test_the_example_of_messages_nobody_consumed_lists_the_dropped_one(sandbox):
    # not the messages processed, nor those that failed
    result = run_read_query(sandbox, EXAMPLE_QUERIES["Messages nobody consumed"])
    rows = [(r["workflow_id"], r["subject"]) for r in result.table.to_pylist()]
    assert rows == [(STALLED_WORKFLOW, PARSED)]


def test_the_views_over_spans_run_in_the_sandbox_over_a_store_of_many_segments(tmp_path):
    # each place the views name the spans read every segment again, and the plan
    # reserved more memory than the console may use: Out of Memory on 9,000 spans
    store = build_store_of_many_segments(tmp_path / "data", workflows=1000, segments=100)
    con = lock_down(correlator.connect(store), store_dir=store)
    try:
        hops = run_read_query(con, "SELECT count(*) AS n FROM hops")
        edges = run_read_query(con, "SELECT subject, messages FROM edges ORDER BY subject")
    finally:
        con.close()
    assert hops.table.column("n").to_pylist() == [3000]  # three hops a run
    assert edges.table.to_pylist() == [
        {"subject": subject, "messages": 1000} for subject in sorted((SCORED, SUBMITTED, PARSED))
    ]


def test_copy_to_a_file_is_refused_even_inside_the_store(sandbox, recruitment_store):
    target = recruitment_store / "stolen.csv"
    with pytest.raises(QueryRefusedError, match="COPY"):
        run_read_query(sandbox, f"COPY (SELECT * FROM spans) TO '{target}'")
    assert not target.exists()


def test_reading_a_file_outside_the_store_is_refused(sandbox):
    with pytest.raises(QueryRefusedError, match="only inside the store directory"):
        run_read_query(sandbox, "SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(QueryRefusedError, match="only inside the store directory"):
        run_read_query(sandbox, "SELECT * FROM read_text('/etc/hostname')")


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("ATTACH 'other.duckdb' AS other", "ATTACH"),
        ("INSTALL httpfs", "INSTALL and LOAD"),
        ("LOAD httpfs", "INSTALL and LOAD"),
        ("SET enable_external_access = true", "configuration is locked"),
        ("RESET lock_configuration", "configuration is locked"),
        ("PRAGMA enable_profiling", "configuration is locked"),
        ("CREATE TABLE copy_of_spans AS SELECT * FROM spans", "DDL and DML"),
        ("DROP VIEW workflows", "DDL and DML"),
        ("INSERT INTO spans_raw SELECT * FROM spans_raw", "DDL and DML"),
        ("EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'", "EXPLAIN"),
        ("-- why\nEXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'", "EXPLAIN"),
        ("EXPORT DATABASE 'dump'", "EXPORT"),
    ],
)
def test_statements_other_than_reads_are_refused_with_the_reason(sandbox, sql, reason):
    with pytest.raises(QueryRefusedError, match=reason):
        run_read_query(sandbox, sql)


def test_an_explain_behind_a_comment_is_an_explain(sandbox):
    result = run_read_query(sandbox, "-- why is it slow?\nEXPLAIN SELECT count(*) FROM spans")
    assert result.table.num_rows >= 1


def test_several_statements_at_once_are_refused(sandbox):
    with pytest.raises(QueryRefusedError, match="one statement at a time"):
        run_read_query(sandbox, "SELECT 1; SELECT 2")


def test_the_connection_itself_is_locked_beneath_the_statement_check(sandbox):
    # Even a statement that slipped past the parser check could not lift the lock.
    with pytest.raises(duckdb.Error, match="locked"):
        sandbox.cursor().execute("SET enable_external_access = true")
    with pytest.raises(duckdb.Error, match="disabled by configuration"):
        sandbox.cursor().execute("SELECT * FROM read_csv('/etc/passwd')")


def test_results_stop_at_the_row_cap_and_say_so(sandbox):
    result = run_read_query(sandbox, "SELECT * FROM range(50000)", row_cap=100)
    assert result.table.num_rows == 100
    assert result.truncated


def test_a_query_past_the_time_limit_is_interrupted(sandbox):
    with pytest.raises(QueryTimeoutError, match=r"longer than 0\.3 s"):
        run_read_query(sandbox, "SELECT count(*) FROM range(10000000000) a", time_limit_s=0.3)
    # the sandbox still answers afterwards
    assert run_read_query(sandbox, "SELECT 1 AS one").table.num_rows == 1


def test_a_mistyped_query_reports_duckdbs_error(sandbox):
    with pytest.raises(QueryFailedError, match="syntax error"):
        run_read_query(sandbox, "SELEC * FROM workflows")
    with pytest.raises(QueryFailedError, match="no_such_view"):
        run_read_query(sandbox, "SELECT * FROM no_such_view")


def test_a_bare_at_column_gets_told_how_to_quote_it(sandbox):
    with pytest.raises(QueryFailedError, match=r'write it in double quotes, "at"'):
        run_read_query(sandbox, "SELECT service, max(at) FROM heartbeats GROUP BY service")
    quoted = run_read_query(sandbox, 'SELECT service, max("at") FROM heartbeats GROUP BY service')
    assert quoted.table.num_rows > 0


def test_only_the_store_and_a_private_spill_directory_are_readable(sandbox, recruitment_store):
    allowed = run_read_query(sandbox, "SELECT current_setting('allowed_directories') AS d")
    directories = allowed.table.column("d").to_pylist()[0]
    assert f"{recruitment_store}/" in directories
    others = [d for d in directories if d != f"{recruitment_store}/"]
    assert len(others) == 1 and "choreoscope-sql-spill-" in others[0]


def test_the_spill_directory_goes_with_its_sandbox(recruitment_store: Path) -> None:
    # a dashboard locks a connection down per session: each left an empty directory
    # behind in the system's temp folder
    con = lock_down(correlator.connect(recruitment_store), store_dir=recruitment_store)
    (spill,) = con.execute("SELECT current_setting('temp_directory')").fetchone()
    assert Path(spill).is_dir()
    con.close()
    del con
    gc.collect()
    assert not Path(spill).exists()
