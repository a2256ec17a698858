"""Overview and Workflows pages: what is stuck, and the filterable table of runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import streamlit as st

from correlator.last_pass import note_judging, write_last_pass
from correlator.queries import LISTED_AT_MOST, STUCK_AT_MOST
from tests.dashboard.app_driver import open_dashboard
from tests.dashboard.fixture_store import (
    COMPLETED_COUNT,
    FAILED_WORKFLOW,
    HOSTILE_WORKFLOW,
    PARSED,
    STALLED_WORKFLOW,
    build_recruitment_store,
    build_store_of_many_segments,
    completed_workflow_id,
)

ALL_WORKFLOWS = COMPLETED_COUNT + 3
WORKFLOWS = "views/workflows.py"


def test_overview_tiles_count_runs_by_status(recruitment_store: Path):
    at = open_dashboard(recruitment_store)
    assert at.title[0].value == "Overview"
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Started"] == str(ALL_WORKFLOWS)
    assert tiles["Completed"] == str(COMPLETED_COUNT + 1)
    assert tiles["Stalled"] == "1"
    assert tiles["Failed"] == "1"
    assert tiles["p95 end to end"].endswith("s")


def test_overview_lists_the_stalled_workflow_and_anomaly_counts(recruitment_store: Path):
    at = open_dashboard(recruitment_store)
    stuck = next(d.value for d in at.dataframe if "waiting_on" in d.value.columns)
    assert set(stuck["workflow_id"]) == {STALLED_WORKFLOW, FAILED_WORKFLOW}
    stalled = stuck.set_index("workflow_id").loc[STALLED_WORKFLOW]
    assert stalled["waiting_on"].startswith(PARSED)
    assert stalled["root_cause"] == "dropped"  # why, without opening the run
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["dropped"] == "1" and tiles["failed"] == "1"


def test_the_anomalies_chart_says_it_counts_detections_open_and_resolved(
    recruitment_store: Path,
):
    at = open_dashboard(recruitment_store)
    assert "Anomalies detected over time" in [h.value for h in at.subheader]
    assert any(
        "still open solid" in c.value and "resolved since faded" in c.value for c in at.caption
    )


def test_an_overview_of_more_stuck_runs_than_it_lists_says_so(tmp_path: Path):
    store = build_recruitment_store(tmp_path / "data", more_stalled=STUCK_AT_MOST).root
    at = open_dashboard(store)
    stuck = next(d.value for d in at.dataframe if "waiting_on" in d.value.columns)
    assert len(stuck) == STUCK_AT_MOST
    assert any(f"The {STUCK_AT_MOST} most recent" in c.value for c in at.caption)


def test_overview_shows_the_worst_hop_first(recruitment_store: Path):
    at = open_dashboard(recruitment_store)
    hops = next(d.value for d in at.dataframe if "consumer_service" in d.value.columns)
    assert (hops.iloc[0]["subject"], hops.iloc[0]["consumer_service"]) == (PARSED, "scorer")


def test_workflows_page_lists_every_run_stuck_first_with_links(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page=WORKFLOWS)
    table = at.dataframe[0].value
    assert len(table) == ALL_WORKFLOWS
    assert list(table["status"][:2]) == ["stalled", "failed"]
    assert table["open"].str.startswith("workflow?workflow=").all()


def test_a_workflows_table_cut_at_its_limit_says_so(tmp_path: Path):
    store = build_store_of_many_segments(
        tmp_path / "data", workflows=LISTED_AT_MOST + 1, segments=1
    )
    at = open_dashboard(store, page=WORKFLOWS)
    at.selectbox(key="time_window").set_value("All time").run()
    assert len(at.dataframe[0].value) == LISTED_AT_MOST
    assert any(f"the first {LISTED_AT_MOST} workflows" in c.value for c in at.caption)


def test_status_filter_narrows_to_the_stalled_workflow(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page=WORKFLOWS)
    at.multiselect(key="filter_status").set_value(["stalled"]).run()
    assert list(at.dataframe[0].value["workflow_id"]) == [STALLED_WORKFLOW]


def test_search_and_service_filters_narrow_the_table(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page=WORKFLOWS)
    at.text_input(key="filter_search").input("wf-ok-").run()
    assert set(at.dataframe[0].value["workflow_id"]) == {
        completed_workflow_id(n) for n in range(COMPLETED_COUNT)
    }
    at.text_input(key="filter_search").input("").run()
    at.selectbox(key="filter_service").set_value("notifier").run()
    narrowed = set(at.dataframe[0].value["workflow_id"])
    assert STALLED_WORKFLOW not in narrowed and FAILED_WORKFLOW not in narrowed
    assert len(narrowed) == COMPLETED_COUNT + 1


def test_search_finds_a_workflow_by_an_attribute_value(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page=WORKFLOWS)
    at.text_input(key="filter_search").input("pwned").run()
    assert list(at.dataframe[0].value["workflow_id"]) == [HOSTILE_WORKFLOW]


def test_time_window_keeps_stuck_runs_but_drops_old_completed_ones(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page=WORKFLOWS)
    at.selectbox(key="time_window").set_value("Last 15 minutes").run()
    shown = set(at.dataframe[0].value["workflow_id"])
    assert {STALLED_WORKFLOW, FAILED_WORKFLOW, HOSTILE_WORKFLOW} <= shown
    assert completed_workflow_id(0) not in shown  # completed 30 minutes ago


def test_a_store_the_correlator_stopped_judging_says_its_statuses_are_old(tmp_path: Path):
    layout = build_recruitment_store(tmp_path / "data")
    now = dt.datetime.now(dt.UTC)
    write_last_pass(layout, as_of=now - dt.timedelta(seconds=5), watching=True)
    assert not open_dashboard(layout.root).warning  # a watcher at work

    write_last_pass(layout, as_of=now - dt.timedelta(minutes=4), watching=True)
    (warning,) = open_dashboard(layout.root).warning
    assert warning.value.startswith("Statuses are as of the watcher's last pass, 4 min ago")
    assert "choreoscope correlate --watch --data" in warning.value


def test_a_correlator_that_stops_while_the_page_refreshes_is_said_to_have_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # the note was drawn once, when the page opened: a live page whose watcher died
    # kept its numbers still ("Stalled 0") and never said they had grown old
    layout = build_recruitment_store(tmp_path / "data")
    now = dt.datetime.now(dt.UTC)
    armed: list[bool] = []

    def refreshed_after_the_watcher_died(body, *, run_every=None):
        def runs():
            body()  # the page as opened
            if armed.pop():
                write_last_pass(layout, as_of=now - dt.timedelta(minutes=4), watching=True)
                st.cache_data.clear()
                body()  # its next live refresh

        return runs

    monkeypatch.setattr(st, "fragment", refreshed_after_the_watcher_died)
    write_last_pass(layout, as_of=now - dt.timedelta(seconds=5), watching=True)
    armed.append(True)
    at = open_dashboard(layout.root)
    for page in ("views/anomalies.py", "views/services.py", "views/choreography.py", None):
        (warning,) = at.warning
        assert warning.value.startswith("Statuses are as of the watcher's last pass, 4 min")
        if page is not None:
            write_last_pass(layout, as_of=now - dt.timedelta(seconds=5), watching=True)
            armed.append(True)
            at.switch_page(page).run()


def test_a_store_no_correlator_has_judged_says_so_not_that_nothing_is_stuck(tmp_path: Path):
    # spans collected, no correlator run yet: every run reads "in flight"
    store = build_store_of_many_segments(tmp_path / "data", workflows=3, segments=1)
    at = open_dashboard(store)
    tiles = {m.label: m.value for m in at.metric}
    assert (tiles["In flight"], tiles["Stalled"]) == ("3", "0")
    (warning,) = at.warning
    assert warning.value.startswith("No correlator has judged this store yet")
    assert "choreoscope correlate --watch --data" in warning.value

    # a store the correlator judged (no pass recorded, as by a one-off pass) is not warned
    assert not open_dashboard(build_recruitment_store(tmp_path / "judged").root).warning


def test_a_store_the_correlator_is_judging_again_says_so_not_that_it_stopped(tmp_path: Path):
    # a watcher restarted on a week of spans: its first pass takes minutes
    layout = build_recruitment_store(tmp_path / "data")
    now = dt.datetime.now(dt.UTC)
    write_last_pass(layout, as_of=now - dt.timedelta(minutes=40), watching=False)
    note_judging(layout, since=now - dt.timedelta(minutes=3))
    page = open_dashboard(layout.root)
    assert not page.warning
    (info,) = [i.value for i in page.info if "judging" in i.value]
    assert info.startswith("The correlator has been judging the stored spans for 3 min")
    assert "statuses are as of its last pass, 40 min ago" in info

    # one that died meanwhile stopped noting it: the statuses are old, and nothing works
    write_last_pass(
        layout, as_of=now - dt.timedelta(minutes=40), watching=False,
        judging_since=now - dt.timedelta(minutes=30), noted_at=now - dt.timedelta(minutes=25),
    )  # fmt: skip
    (warning,) = open_dashboard(layout.root).warning
    assert warning.value.startswith("Statuses are as of the correlator's last pass, 40 min ago")


def test_a_correlator_whose_cold_pass_keeps_failing_is_not_said_to_be_judging(tmp_path: Path):
    # restarted with too little memory, it tries again every minute at most
    layout = build_recruitment_store(tmp_path / "data")
    now = dt.datetime.now(dt.UTC)
    write_last_pass(layout, as_of=now - dt.timedelta(minutes=40), watching=False)
    note_judging(layout, since=now - dt.timedelta(minutes=12), failures=7)
    page = open_dashboard(layout.root)
    assert not [i for i in page.info if "judging" in i.value]
    (warning,) = page.warning
    assert warning.value.startswith(
        "The correlator has been trying to judge the stored spans for 12 min"
    )
    assert "failed 7 times" in warning.value


def test_the_time_window_and_pause_stay_as_chosen_from_page_to_page(recruitment_store: Path):
    at = open_dashboard(recruitment_store)
    at.selectbox(key="time_window").set_value("Last 15 minutes").run()
    at.toggle(key="live_refresh").set_value(False).run()
    at.switch_page(WORKFLOWS).run()
    assert at.selectbox(key="time_window").value == "Last 15 minutes"
    assert at.toggle(key="live_refresh").value is False
    assert completed_workflow_id(0) not in set(at.dataframe[0].value["workflow_id"])

    at.selectbox(key="time_window").set_value("All time").run()
    at.switch_page("views/anomalies.py").run()
    assert at.selectbox(key="time_window").value == "All time"


def test_a_run_stalled_since_before_the_window_keeps_its_anomaly_in_view(tmp_path: Path):
    # the correlator found the drop 20 minutes ago; the user looks at the last 15
    found = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    store = build_recruitment_store(tmp_path / "data", now=found).root
    at = open_dashboard(store)
    at.selectbox(key="time_window").set_value("Last 15 minutes").run()
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Stalled"] == "1"
    assert tiles["dropped"] == "1"  # why, beside it
    assert "failed" not in tiles  # the failed run ended before the window: history

    at.switch_page("views/anomalies.py").run()
    assert not at.success  # not "No anomalies in this window."
    listed = at.dataframe[0].value
    assert list(zip(listed["workflow_id"], listed["root_cause"], strict=True)) == [
        (STALLED_WORKFLOW, "dropped")
    ]
