"""`choreoscope sql` prints query results as a table, CSV, JSON or Parquet, reads
the query from an argument, standard input or a file, and explains bad SQL; and
`catalog.duckdb` opens in any DuckDB client, read-only, with every view."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from choreoscope.catalog import write_catalog
from collector.decoding import Payload, decode_payloads
from collector.segment_writer import SegmentWriter
from instrumentation import wire
from store import SCHEMA_VERSION, StoreLayout
from tests.collector.batches import columnar_batch


@pytest.fixture
def filled_store(store_layout: StoreLayout) -> StoreLayout:
    decoded = decode_payloads(
        [Payload(columnar_batch(0, 12), wire.CONTENT_TYPE_COLUMNAR, "test", "exp-1")]
    )
    SegmentWriter(layout=store_layout).write("spans", decoded.spans)
    return store_layout


def sql(layout: StoreLayout, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "choreoscope.cli", "sql", "--data", str(layout.root), *args],
        input=stdin.encode() if stdin is not None else None,
        capture_output=True,
        timeout=60,
        check=False,
    )


QUERY = "select workflow_id, count(*) as spans from spans group by 1 order by 1"


def test_table_output_shows_rows_and_count(filled_store: StoreLayout) -> None:
    out = sql(filled_store, QUERY)
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert "| workflow_id | spans |" in text
    assert "| wf-0        | 8     |" in text
    assert text.rstrip().endswith("(2 rows)")


def test_a_table_says_when_it_cut_cells_and_how_to_see_them_whole(
    filled_store: StoreLayout,
) -> None:
    out = sql(filled_store, "select repeat('why ', 40) as detail")

    text = out.stdout.decode()
    assert "…" in text
    assert text.rstrip().endswith("(1 row; 1 cell cut at 60 characters: --format json or csv "
                                  "prints them whole)")  # fmt: skip


def test_json_output_is_one_array_of_row_objects(filled_store: StoreLayout) -> None:
    out = sql(filled_store, "--format", "json", QUERY)
    assert json.loads(out.stdout) == [
        {"workflow_id": "wf-0", "spans": 8},
        {"workflow_id": "wf-1", "spans": 4},
    ]


def test_json_output_renders_times_as_iso_text(filled_store: StoreLayout) -> None:
    out = sql(filled_store, "--format", "json", "select start_time from spans limit 1")
    (row,) = json.loads(out.stdout)
    assert row["start_time"].endswith("+00:00")


def test_csv_output_reads_back(filled_store: StoreLayout) -> None:
    out = sql(filled_store, "--format", "csv", QUERY)
    assert b"\r" not in out.stdout  # Unix line ends, like every other output
    assert list(csv.reader(io.StringIO(out.stdout.decode()))) == [
        ["workflow_id", "spans"],
        ["wf-0", "8"],
        ["wf-1", "4"],
    ]


def test_lists_and_structs_print_as_json_in_the_table_and_in_csv(
    filled_store: StoreLayout,
) -> None:
    query = "select ['a', 'b'] as services, {'p99_ms': 1.5::double} as latency"
    table = sql(filled_store, query).stdout.decode()
    rows = list(
        csv.reader(io.StringIO(sql(filled_store, "--format", "csv", query).stdout.decode()))
    )

    assert '["a", "b"]' in table and '{"p99_ms": 1.5}' in table  # not Python's ['a', 'b']
    assert rows[1] == ['["a", "b"]', '{"p99_ms": 1.5}']


def test_parquet_output_to_a_file(filled_store: StoreLayout, tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    out = sql(filled_store, "--format", "parquet", "-o", str(target), "select * from spans")
    assert out.returncode == 0, out.stderr
    assert pq.read_table(target).num_rows == 12
    assert b"Warning" not in out.stderr  # DuckDB's, on Arrow from a DB-API result


def test_query_from_stdin_and_from_a_file(filled_store: StoreLayout, tmp_path: Path) -> None:
    from_stdin = sql(filled_store, "--format", "json", stdin="select count(*) as n from spans;")
    assert json.loads(from_stdin.stdout) == [{"n": 12}]
    query_file = tmp_path / "q.sql"
    query_file.write_text("-- how many\nselect count(*) as n from spans\n")
    from_file = sql(filled_store, "--format", "json", "--file", str(query_file))
    assert json.loads(from_file.stdout) == [{"n": 12}]


def test_bad_sql_says_what_failed_and_which_views_exist(filled_store: StoreLayout) -> None:
    out = sql(filled_store, "select nope from spanz")
    assert out.returncode == 2
    err = out.stderr.decode()
    assert "the query failed" in err and "spanz" in err
    assert "Views you can query:" in err and "spans" in err
    assert "Traceback" not in err


def test_a_failed_query_lists_every_view_the_contract_names(filled_store: StoreLayout) -> None:
    # a user who mistyped choreography_steps was told the views were spans ... hops
    # only, as if the correlator's other contract views did not exist
    out = sql(filled_store, "select * from choreography_step")
    assert out.returncode == 2
    listed = out.stderr.decode().split("Views you can query:")[1].split("\n")[0]
    views = {v.strip() for v in listed.split(",")}
    contract = {
        "workflow_status", "choreography_steps", "choreography_follows",
        "heartbeat_sequence", "deliveries_seen",
    }  # fmt: skip
    assert contract <= views
    assert "workflow_spans" not in views  # internal steps stay unlisted


def test_a_bare_at_column_gets_told_how_to_quote_it(filled_store: StoreLayout) -> None:
    out = sql(filled_store, "select count(*) from heartbeats where at > now() - interval 1 day")
    assert out.returncode == 2
    assert 'the column at is a SQL keyword; write it in double quotes, "at"' in out.stderr.decode()
    # words that only look like it get no hint: a literal, a qualified column, AT TIME ZONE
    for text in ("select 'at' as x from heartbeats where", "select h.at from heartbeats h where",
                 "select now() at time zone 'UTC' where"):  # fmt: skip
        out = sql(filled_store, text)
        assert out.returncode == 2 and "keyword" not in out.stderr.decode(), text


def test_catalog_opens_read_only_in_duckdb_with_every_view(filled_store: StoreLayout) -> None:
    assert write_catalog(filled_store) is True
    assert write_catalog(filled_store) is False  # unchanged views: left alone
    con = duckdb.connect(str(filled_store.catalog), read_only=True)
    views = {r[0] for r in con.execute("select view_name from duckdb_views()").fetchall()}
    assert {"spans", "spans_raw", "bus_events", "rejected", "heartbeats"} <= views
    assert {"messages", "workflows"} <= views  # the correlator's
    assert con.execute("select count(*) from spans").fetchone() == (12,)
    assert con.execute("select schema_version from choreoscope_catalog").fetchone() == (
        SCHEMA_VERSION,
    )
    other = duckdb.connect(str(filled_store.catalog), read_only=True)  # readers side by side
    assert other.execute("select count(*) from spans").fetchone() == (12,)


def test_only_one_reading_query_runs(filled_store: StoreLayout, tmp_path: Path) -> None:
    target = tmp_path / "x.csv"

    copy = sql(filled_store, f"copy (select 1) to '{target}'")
    explained = sql(filled_store, f"explain analyze copy (select 1) to '{target}'")
    behind_a_comment = sql(filled_store, f"-- why\nexplain analyze copy (select 1) to '{target}'")
    two = sql(filled_store, "select 1; select 2")

    assert copy.returncode == explained.returncode == behind_a_comment.returncode == 2
    assert not target.exists()
    assert sql(filled_store, "-- why\n/* a plan */ explain select 1").returncode == 0
    assert "only reads" in copy.stderr.decode() and "-o FILE" in copy.stderr.decode()
    # named as typed: DuckDB types INSTALL as a LOAD statement
    assert "INSTALL is no read" in sql(filled_store, "install httpfs").stderr.decode()
    assert two.returncode == 2 and "run one query at a time" in two.stderr.decode()
    assert b"Traceback" not in copy.stderr + two.stderr


@pytest.mark.parametrize("suffix", ["csv", "json", "parquet"])
def test_an_output_file_without_format_is_written_in_the_format_its_suffix_names(
    filled_store: StoreLayout, tmp_path: Path, suffix: str
) -> None:
    # `-o report.csv` wrote the drawn table (+----+) into report.csv, and
    # `-o spans.parquet` a text table no Parquet reader could open
    target = tmp_path / f"out.{suffix}"
    out = sql(filled_store, "-o", str(target), "select count(*) as n from spans")
    assert out.returncode == 0, out.stderr
    if suffix == "parquet":
        assert pq.read_table(target).to_pylist() == [{"n": 12}]
    elif suffix == "json":
        assert json.loads(target.read_text()) == [{"n": 12}]
    else:
        assert target.read_text() == "n\n12\n"


def test_an_explicit_format_wins_over_the_output_suffix(
    filled_store: StoreLayout, tmp_path: Path
) -> None:
    target = tmp_path / "out.csv"
    out = sql(filled_store, "--format", "table", "-o", str(target), "select 1 as n")
    assert out.returncode == 0, out.stderr
    assert target.read_text().startswith("+---+")


MANY = "select range as n from range(2500)"


def _table_rows(text: str) -> list[str]:
    """The data lines of a drawn table (its header line excepted)."""
    return [line for line in text.splitlines() if line.startswith("| ") and "| n " not in line]


def test_a_huge_result_stops_the_table_and_says_how_to_get_every_row(
    filled_store: StoreLayout, tmp_path: Path
) -> None:
    # `select * from range(3000000)` printed three million rows, with no word
    out = sql(filled_store, MANY)
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert len(_table_rows(text)) == 1000
    assert "| 999 |" in text and "| 1000 |" not in text  # the first 1,000, in order
    assert text.rstrip().endswith(
        "(1,000 of 2,500 rows shown, 1,500 left out: --format csv -o FILE writes them all, "
        "or --max-rows N shows more (0: all))"
    )

    fewer = sql(filled_store, "--max-rows", "10", MANY).stdout.decode()
    every = sql(filled_store, "--max-rows", "0", MANY).stdout.decode()
    assert len(_table_rows(fewer)) == 10 and "(10 of 2,500 rows shown" in fewer
    assert len(_table_rows(every)) == 2500 and every.rstrip().endswith("(2500 rows)")


def test_machine_formats_keep_every_row_of_a_huge_result(
    filled_store: StoreLayout, tmp_path: Path
) -> None:
    target = tmp_path / "all.csv"
    assert sql(filled_store, "-o", str(target), MANY).returncode == 0
    as_json = sql(filled_store, "--format", "json", "--max-rows", "5", MANY)
    assert target.read_text().splitlines()[1:] == [str(n) for n in range(2500)]
    assert len(json.loads(as_json.stdout)) == 2500


def test_a_row_cap_that_is_no_count_is_refused(filled_store: StoreLayout) -> None:
    out = sql(filled_store, "--max-rows", "-3", MANY)
    assert out.returncode == 2
    assert "'-3' is not a row count: write 0 or more" in out.stderr.decode()
