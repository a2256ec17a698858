"""The SQL console page: results with downloads for reads, a clear refusal for the rest."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from tests.dashboard.app_driver import open_dashboard, plain_texts

CONSOLE = "views/sql_console.py"


def run_sql(at: AppTest, sql: str) -> AppTest:
    at.text_area(key="sql_text").input(sql).run()
    at.button(key="run_sql").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_select_shows_its_rows_with_csv_and_parquet_downloads(recruitment_store: Path):
    at = run_sql(
        open_dashboard(recruitment_store, page=CONSOLE),
        "SELECT workflow_id FROM workflows WHERE workflow_id LIKE 'wf-ok-%' ORDER BY 1",
    )
    assert list(at.dataframe[-1].value["workflow_id"])[:2] == ["wf-ok-000", "wf-ok-001"]
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download CSV", "Download Parquet"]


def test_a_write_is_refused_with_a_clear_message(recruitment_store: Path):
    target = recruitment_store / "exfiltrated.csv"
    at = run_sql(
        open_dashboard(recruitment_store, page=CONSOLE),
        f"COPY (SELECT * FROM spans) TO '{target}'",
    )
    assert any("did not run this query" in e.value for e in at.error)
    assert any(t.startswith("refused: COPY") for t in plain_texts(at))
    assert not target.exists()


def test_reading_system_files_is_refused(recruitment_store: Path):
    at = run_sql(
        open_dashboard(recruitment_store, page=CONSOLE), "SELECT * FROM read_csv('/etc/passwd')"
    )
    assert any("only inside the store directory" in t for t in plain_texts(at))
    assert not any("root:" in str(d.value) for d in at.dataframe)


def test_an_example_query_fills_the_box_and_runs(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page=CONSOLE)
    at.selectbox(key="example").set_value("Anomalies by kind").run()
    assert "FROM anomalies" in at.text_area(key="sql_text").value
    at.button(key="run_sql").click().run()
    assert not at.error
    assert list(at.dataframe[-1].value.columns) == ["kind", "anomalies", "latest"]


def test_the_schema_browser_lists_the_contract_views(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page=CONSOLE)
    captions = {c.value for c in at.caption}
    assert {"workflows", "anomalies", "messages", "edges", "spans", "heartbeats"} <= captions


def test_a_join_repeating_a_column_name_shows_both_columns(recruitment_store: Path):
    at = run_sql(
        open_dashboard(recruitment_store, page=CONSOLE),
        "SELECT w.workflow_id, a.workflow_id, a.kind FROM workflows w "
        "JOIN anomalies a ON a.workflow_id = w.workflow_id ORDER BY a.kind",
    )
    shown = at.dataframe[-1].value
    assert list(shown.columns) == ["workflow_id", "workflow_id_1", "kind"]
    assert list(shown["kind"]) == ["dropped", "failed"]


def test_an_interval_result_shows_and_is_offered_as_parquet(recruitment_store: Path):
    at = run_sql(  # how long each stalled run has been idle: an INTERVAL
        open_dashboard(recruitment_store, page=CONSOLE),
        "SELECT workflow_id, now() - last_activity_at AS idle FROM workflows "
        "WHERE status = 'stalled'",
    )
    shown = at.dataframe[-1].value
    assert list(shown.columns) == ["workflow_id", "idle"]
    # a duration, not "<DateOffset: days=…, nanoseconds=…>" objects
    assert (
        pd.api.types.is_timedelta64_dtype(shown["idle"]) and (shown["idle"] > pd.Timedelta(0)).all()
    )
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download CSV", "Download Parquet"]
    assert any(c.value.endswith("Parquet cannot hold: idle") for c in at.caption)


def test_the_console_offers_no_time_window_it_would_not_apply(recruitment_store: Path):
    # it reads everything stored: a "Last 15 minutes" beside it read as if it filtered
    at = open_dashboard(recruitment_store)
    at.selectbox(key="time_window").set_value("Last 15 minutes").run()
    at.switch_page(CONSOLE).run()
    assert not [s for s in at.selectbox if s.key == "time_window"]
    assert any("time window does not apply" in c.value for c in at.sidebar.caption)
    run_sql(at, "SELECT count(*) AS n FROM workflows WHERE workflow_id LIKE 'wf-ok-%'")
    assert at.dataframe[-1].value["n"].iloc[0] == 6  # all, not the window's

    at.switch_page("views/overview.py").run()  # the other pages keep the window chosen
    assert at.selectbox(key="time_window").value == "Last 15 minutes"


def test_the_console_offers_no_live_refresh_it_would_not_do(recruitment_store: Path):
    # a "Live refresh" toggle beside a query run on demand changed nothing
    at = open_dashboard(recruitment_store)
    at.toggle(key="live_refresh").set_value(False).run()
    at.switch_page(CONSOLE).run()
    assert not [t for t in at.toggle if t.key == "live_refresh"]
    run_sql(at, "SELECT 1 AS one")
    assert at.dataframe[-1].value["one"].iloc[0] == 1

    at.switch_page("views/overview.py").run()  # the other pages keep the choice
    assert at.toggle(key="live_refresh").value is False
