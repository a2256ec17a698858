"""Choreography map, Anomalies and Services pages."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa

from collector.segment_writer import SegmentWriter
from correlator.findings import ANOMALIES, read_findings, write_findings
from store import StoreLayout
from store.schema import BUS_EVENTS
from tests.damaged_files import cut_short
from tests.dashboard.app_driver import open_dashboard
from tests.dashboard.fixture_store import FAILED_WORKFLOW, PARSED, STALLED_WORKFLOW
from tests.dashboard.scenario_spans import heartbeat_rows


def test_choreography_map_draws_services_and_subjects_with_the_bad_hop_red(
    recruitment_store: Path,
):
    at = open_dashboard(recruitment_store, page="views/choreography.py")
    graphs = at.get("graphviz_chart")
    assert len(graphs) == 1
    dot = graphs[0].proto.spec
    for name in ("intake", "parser", "scorer", "notifier", PARSED):
        assert f'label="{name}"' in dot
    red = [line for line in dot.splitlines() if 'color="#d62728"' in line]
    assert len(red) == 1 and '"svc:scorer"' in red[0] and "errors" in red[0]


def test_choreography_page_shows_the_learned_model(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page="views/choreography.py")
    learned = next(d.value for d in at.dataframe if "deadline_s" in d.value.columns)
    assert set(learned["source"]) == {"learned"}
    assert PARSED in set(learned["subject"])


def test_anomalies_are_grouped_by_kind_and_link_to_their_workflow(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page="views/anomalies.py")
    headings = [s.value for s in at.subheader]
    assert {"dropped (1)", "failed (1)", "telemetry_gap (2)"} <= set(headings)
    dropped = at.dataframe[headings.index("dropped (1)")].value
    assert list(dropped["workflow_id"]) == [STALLED_WORKFLOW]
    assert dropped["open"].iloc[0] == f"workflow?workflow={STALLED_WORKFLOW}"
    assert "never received" in dropped["detail"].iloc[0]


def test_anomaly_kind_filter_narrows_the_list(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page="views/anomalies.py")
    at.multiselect(key="anomaly_kinds").set_value(["failed"]).run()
    assert [s.value for s in at.subheader] == ["failed (1)"]
    assert list(at.dataframe[0].value["workflow_id"]) == [FAILED_WORKFLOW]


def test_services_page_shows_liveness_telemetry_gaps_and_consumer_lag(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page="views/services.py")
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Instances alive"] == "4"
    assert tiles["Instances silent"] == "1"
    liveness = at.dataframe[0].value.set_index("service")
    assert not liveness.loc["enricher", "alive"]
    assert liveness.loc["scorer", "alive"]
    # its counters fell since an earlier beat: it restarted, and they count from then
    assert liveness["restarted_at"].notna().to_dict() == {
        "enricher": False,
        "intake": False,
        "notifier": False,
        "parser": False,
        "scorer": True,
    }
    assert liveness.loc["scorer", "received"] == 40
    gaps = at.dataframe[1].value.set_index("service")
    assert gaps.loc["notifier", "spans_dropped"] == 17
    consumers = at.dataframe[2].value  # as last sampled, the most behind first
    assert list(consumers["consumer"]) == [
        "enricher--recruit_cv_parsed",
        "scorer--recruit_cv_parsed",
    ]
    assert list(consumers["backlog"]) == [7, 0]
    assert list(consumers["unacked"]) == [0, 1]


def test_a_damaged_segment_is_named_on_the_page_that_reads_it_and_the_others_work(
    recruitment_store: Path, tmp_path: Path
):
    # views are bound where a page reads them: a damaged consumer-lag segment fails the
    # Services page only, which must say which file and what to do, not show a traceback
    store = tmp_path / "data"
    shutil.copytree(recruitment_store, store)
    (segment,) = [p for p in (store / "consumer_lag").rglob("*.parquet") if p.name[0] != "_"]
    cut_short(segment)  # as a crash of the disk can

    services = open_dashboard(store, page="views/services.py")
    (error,) = [str(e.value) for e in services.error]
    assert str(segment) in error and "quarantine" in error
    overview = open_dashboard(store)
    assert not overview.error and "Stuck now" in [s.value for s in overview.subheader]


def test_jetstream_signals_count_only_the_chosen_time_window(
    recruitment_store: Path, tmp_path: Path
):
    # a consumer terminated messages yesterday; in the last 15 minutes, one redelivery
    store = tmp_path / "data"
    shutil.copytree(recruitment_store, store)
    now = dt.datetime.now(dt.UTC)
    advisories = [("terminated", now - dt.timedelta(hours=20))] * 3 + [
        ("max_deliveries", now - dt.timedelta(minutes=2))
    ]
    rows = [
        {"kind": kind, "stream": "CHOREO_EVENTS", "consumer": "scorer--recruit_cv_parsed",
         "stream_seq": n, "deliveries": 3, "at": at}
        for n, (kind, at) in enumerate(advisories)
    ]  # fmt: skip
    writer = SegmentWriter(layout=StoreLayout.at(store), writer_id="advisories")
    try:
        writer.write("bus_events", pa.Table.from_pylist(rows, schema=BUS_EVENTS), at=now)
    finally:
        writer.close()

    at = open_dashboard(store, page="views/services.py")
    at.selectbox(key="time_window").set_value("Last 15 minutes").run()
    signals = at.dataframe[-1].value
    assert list(zip(signals["kind"], signals["events"], strict=True)) == [("max_deliveries", 1)]

    at.selectbox(key="time_window").set_value("All time").run()
    signals = at.dataframe[-1].value.set_index("kind")["events"].to_dict()
    assert signals == {"terminated": 3, "max_deliveries": 1}


def test_the_map_lists_the_deviations_of_the_chosen_window(recruitment_store: Path, tmp_path: Path):
    # one deviation two days ago, one a minute ago: "Last hour" shows the recent one
    store = tmp_path / "data"
    shutil.copytree(recruitment_store, store)
    layout = StoreLayout.at(store)
    now = dt.datetime.now(dt.UTC)
    found = read_findings(layout, "anomalies").to_pylist()
    for n, (ago, detail) in enumerate(
        [(dt.timedelta(days=2), "old deviation"), (dt.timedelta(minutes=1), "new deviation")]
    ):
        found.append(
            {"anomaly_id": f"dev-{n}", "kind": "deviation", "workflow_id": f"wf-dev-{n}",
             "subject": PARSED, "detected_at": now - ago, "detail": detail, "revision": 1}
        )  # fmt: skip
    write_findings(layout, "anomalies", pa.Table.from_pylist(found, schema=ANOMALIES))

    at = open_dashboard(store, page="views/choreography.py")
    at.selectbox(key="time_window").set_value("Last hour").run()
    (listed,) = [d.value for d in at.dataframe if "detail" in d.value.columns]
    assert list(listed["detail"]) == ["new deviation"]


def test_an_instance_that_said_it_was_stopping_is_stopped_not_silent(tmp_path: Path):
    # a service stopped on purpose (its last heartbeat said so) was counted among the
    # silent ones, as if it had crashed
    layout = StoreLayout.at(tmp_path / "data")
    layout.ensure()
    writer = SegmentWriter(layout=layout, writer_id="beats")
    now = dt.datetime.now(dt.UTC)
    long_ago = now - dt.timedelta(hours=1)
    writer.write("heartbeats", heartbeat_rows([("intake", now, 0)]), at=now)
    writer.write("heartbeats", heartbeat_rows([("crashed", long_ago, 0)]), at=long_ago)
    writer.write(
        "heartbeats", heartbeat_rows([("retired", long_ago, 0)], stopped=True), at=long_ago
    )

    at = open_dashboard(layout.root, page="views/services.py")

    tiles = {m.label: m.value for m in at.metric}
    assert (tiles["Instances alive"], tiles["Instances silent"]) == ("1", "1")
    assert tiles["Instances stopped"] == "1"
    liveness = at.dataframe[0].value.set_index("service")
    assert liveness["stopped"].to_dict() == {"crashed": False, "intake": False, "retired": True}


def test_the_services_page_says_when_each_instance_was_last_seen_in_utc(tmp_path: Path):
    # "3 min ago" alone could not be matched against a log line or an alert's time
    layout = StoreLayout.at(tmp_path / "data")
    layout.ensure()
    writer = SegmentWriter(layout=layout, writer_id="beats")
    beat = dt.datetime(2026, 11, 26, 9, 15, 42, tzinfo=dt.UTC)
    writer.write("heartbeats", heartbeat_rows([("intake", beat, 0)]), at=beat)

    at = open_dashboard(layout.root, page="views/services.py")

    liveness = at.dataframe[0].value
    columns = list(liveness.columns)
    assert columns[columns.index("last_seen") + 1] == "last_seen_utc"  # side by side
    assert liveness.loc[0, "last_seen_utc"] == "2026-11-26 09:15:42 UTC"
