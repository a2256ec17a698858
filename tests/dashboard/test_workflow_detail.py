"""Workflow detail: the deep link, the stall and its explanation, steps and timeline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa

from tests.dashboard.app_driver import dataframe_cells, markdown_texts, open_dashboard, plain_texts
from tests.dashboard.fixture_store import (
    COMPLETED_COUNT,
    FAILED_WORKFLOW,
    HOSTILE_TEXT,
    HOSTILE_WORKFLOW,
    PARSED,
    SCORER_ERROR,
    STALLED_WORKFLOW,
)


def test_deep_link_opens_the_stalled_workflow_with_its_explanation(recruitment_store: Path):
    at = open_dashboard(recruitment_store, workflow=STALLED_WORKFLOW)
    assert at.title[0].value == "Workflow detail"
    assert STALLED_WORKFLOW in plain_texts(at)
    assert any(e.value.startswith("Stalled") for e in at.error)
    explanation = next(t for t in plain_texts(at) if t.startswith("stalled at"))
    assert f"`{PARSED}`" in explanation
    assert "never received by consumer group `scorer`" in explanation


def test_timeline_marks_where_the_stalled_workflow_stopped(recruitment_store: Path):
    at = open_dashboard(recruitment_store, workflow=STALLED_WORKFLOW)
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    spec = charts[0].proto.spec
    assert "never processed" in spec and "queue wait" in spec  # phases drawn apart
    assert '"type": "rule"' in spec  # the stall point's marker
    assert '"title": "start (UTC)"' in spec and '"start_utc"' in spec  # tooltips read UTC


def test_failed_workflow_shows_each_attempt_and_its_error(recruitment_store: Path):
    at = open_dashboard(recruitment_store, workflow=FAILED_WORKFLOW)
    assert any(e.value.startswith("Failed") for e in at.error)
    steps = next(d.value for d in at.dataframe if "delivery" in d.value.columns)
    scorer = steps[(steps["service"] == "scorer") & (steps["operation"] == "process")]
    assert sorted(scorer["delivery"]) == [1, 2, 3]
    assert set(scorer["error"]) == {SCORER_ERROR}


def test_deep_link_to_an_unknown_workflow_says_so(recruitment_store: Path):
    at = open_dashboard(recruitment_store, workflow="no-such-workflow")
    assert any("No workflow with this id" in w.value for w in at.warning)


def test_an_unknown_workflow_offers_the_stuck_runs_and_another_id(recruitment_store: Path):
    # the page said "No workflow with this id" and nothing else: a dead end
    at = open_dashboard(recruitment_store, workflow="no-such-workflow")
    assert set(at.dataframe[0].value["workflow_id"]) == {STALLED_WORKFLOW, FAILED_WORKFLOW}
    at.text_input(key="workflow_id_box").input(FAILED_WORKFLOW).run()
    assert at.query_params["workflow"] == FAILED_WORKFLOW
    assert any(e.value.startswith("Failed") for e in at.error)


def test_the_start_of_an_id_opens_the_one_workflow_it_begins(recruitment_store: Path):
    at = open_dashboard(recruitment_store, workflow=STALLED_WORKFLOW[:8])
    assert at.query_params["workflow"] == STALLED_WORKFLOW
    assert any(e.value.startswith("Stalled") for e in at.error)


def test_the_start_of_several_ids_lists_them_to_choose_from(recruitment_store: Path):
    at = open_dashboard(recruitment_store, workflow="wf-ok-00")
    assert any("Several workflows begin with this id" in i.value for i in at.info)
    listed = list(at.dataframe[0].value["workflow_id"])
    assert listed == [f"wf-ok-00{n}" for n in range(COMPLETED_COUNT)]
    assert not at.warning


def test_detail_page_without_an_id_offers_stuck_runs_and_an_id_box(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page="views/workflow_detail.py")
    offered = set(at.dataframe[0].value["workflow_id"])
    assert offered == {STALLED_WORKFLOW, FAILED_WORKFLOW}
    at.text_input(key="workflow_id_box").input(FAILED_WORKFLOW).run()
    assert FAILED_WORKFLOW in plain_texts(at)
    assert at.query_params["workflow"] == FAILED_WORKFLOW


def test_captured_inputs_and_outputs_are_shown(recruitment_store: Path):
    at = open_dashboard(recruitment_store, workflow=HOSTILE_WORKFLOW)
    assert any(s.value == "Captured inputs and outputs" for s in at.subheader)
    assert "parsed: " + HOSTILE_TEXT in plain_texts(at)


def test_script_tags_and_markdown_in_span_data_render_as_plain_text(recruitment_store: Path):
    at = open_dashboard(recruitment_store, workflow=HOSTILE_WORKFLOW)
    assert HOSTILE_TEXT in plain_texts(at)  # the audit capture, verbatim
    assert HOSTILE_TEXT in dataframe_cells(at)  # the error text in the step table
    for text in markdown_texts(at):
        assert "<script>" not in text and "**bold**" not in text


def test_waterfall_rows_split_queue_wait_from_processing_and_retries(recruitment_store: Path):
    import datetime as dt

    import correlator
    from correlator.queries import workflow_hops, workflow_messages
    from dashboard.waterfall import waterfall_rows

    with correlator.connect(recruitment_store) as con:
        hops = workflow_hops(con, workflow_id=FAILED_WORKFLOW)
        messages = workflow_messages(con, workflow_id=FAILED_WORKFLOW)
    rows = waterfall_rows(hops, messages, view_end=dt.datetime.now(dt.UTC))
    scorer = rows[rows["row"].str.contains("→ scorer")]
    assert scorer["row"].nunique() == 3  # one row per attempt
    assert (scorer["phase"] == "failed attempt").sum() == 3
    assert (scorer["phase"] == "queue wait").sum() == 3


def test_the_timeline_names_the_stuck_message_as_its_explanation_does(recruitment_store: Path):
    import datetime as dt
    import re

    import correlator
    from correlator.queries import workflow_anomalies, workflow_hops, workflow_messages
    from dashboard.waterfall import waterfall_rows

    with correlator.connect(recruitment_store) as con:
        anomalies = workflow_anomalies(con, workflow_id=STALLED_WORKFLOW)
        hops = workflow_hops(con, workflow_id=STALLED_WORKFLOW)
        messages = workflow_messages(con, workflow_id=STALLED_WORKFLOW)
    rows = waterfall_rows(hops, messages, view_end=dt.datetime.now(dt.UTC))
    (waiting,) = rows[rows["phase"] == "never processed"]["row"]
    named = re.search(r"msg (\S+)", anomalies["detail"].iloc[0]).group(1)
    assert f"msg {named}" in waiting


def test_a_terminal_event_nobody_consumes_is_not_drawn_as_waiting():
    import datetime as dt

    import pandas as pd

    from dashboard.waterfall import waterfall_rows

    now = dt.datetime.now(dt.UTC)
    hops = pd.DataFrame(
        columns=[
            "subject",
            "consumer_service",
            "message_id",
            "attempt",
            "published_at",
            "started_at",
            "ended_at",
            "status_code",
        ]
    )
    messages = pd.DataFrame(
        {
            "message_id": ["m-routed", "m-parsed"],
            "subject": ["recruit.candidate.routed", PARSED],
            "published_at": [pd.Timestamp(now - dt.timedelta(seconds=30))] * 2,
            "outcome": ["unconsumed", "unconsumed"],
            "expected_consumers": [[], ["scorer"]],
            "model_known": [True, True],
        }
    )
    rows = waterfall_rows(hops, messages, view_end=now)
    assert list(rows["message_id"]) == ["m-parsed"]
    assert list(rows["phase"]) == ["never processed"]


def test_workflows_joined_by_links_across_traces_are_listed_as_related(tmp_path: Path):
    import datetime as dt

    from collector.segment_writer import SegmentWriter
    from store import StoreLayout
    from tests.dashboard.fixture_store import SUBMITTED
    from tests.dashboard.scenario_spans import ScenarioSpans

    layout = StoreLayout.at(tmp_path / "data")
    layout.ensure()
    spans = ScenarioSpans()
    now = dt.datetime.now(dt.UTC)
    application = spans.publish(
        service="intake",
        subject=SUBMITTED,
        workflow_id="wf-application",
        at=now - dt.timedelta(minutes=2),
        trace_id=spans.new_trace_id(),
    )
    spans.consume(  # a nightly batch handles the application in a trace of its own
        application,
        service="batch-auditor",
        wait=dt.timedelta(seconds=30),
        processing=dt.timedelta(seconds=1),
        in_trace=spans.new_trace_id(),
        in_workflow="wf-nightly-audit",
    )
    writer = SegmentWriter(layout=layout)
    writer.write("spans", spans.table(), at=now)
    writer.close()

    at = open_dashboard(layout.root, workflow="wf-application")
    assert any(s.value == "Related workflows" for s in at.subheader)
    related = at.dataframe[-1].value
    assert list(zip(related["relation"], related["workflow_id"], strict=True)) == [
        ("linked from", "wf-nightly-audit")
    ]
    assert related["open"].iloc[0] == "workflow?workflow=wf-nightly-audit"

    back = open_dashboard(layout.root, workflow="wf-nightly-audit")
    related = back.dataframe[-1].value
    assert list(related["workflow_id"]) == ["wf-application"]
    assert list(related["relation"]) == ["links to"]


def test_the_waiting_message_takes_as_much_of_the_timeline_as_the_hops_before_it(
    recruitment_store: Path,
):
    # a sliver of a bar put its "waiting for 10 min" label over the hops and the stall
    # marker; clipped, it still takes half the chart
    import datetime as dt

    import correlator
    from correlator.queries import workflow_hops, workflow_messages
    from dashboard.waterfall import waterfall_rows

    with correlator.connect(recruitment_store) as con:
        hops = workflow_hops(con, workflow_id=STALLED_WORKFLOW)
        messages = workflow_messages(con, workflow_id=STALLED_WORKFLOW)
    rows = waterfall_rows(hops, messages, view_end=dt.datetime.now(dt.UTC))
    waiting = rows[rows["phase"] == "never processed"].iloc[0]
    before = rows[rows["phase"] != "never processed"]
    assert waiting["end"] - waiting["start"] >= before["end"].max() - before["start"].min()


def test_an_attempt_its_handler_gave_back_is_not_drawn_as_processing(tmp_path: Path):
    # the handler returned without raising, but settled with a nak (not ready) or a
    # term (unusable): it processed nothing, as the messages view and detection say
    import datetime as dt

    from collector.segment_writer import SegmentWriter
    from store import StoreLayout
    from tests.dashboard.fixture_store import SUBMITTED
    from tests.dashboard.scenario_spans import ScenarioSpans

    layout = StoreLayout.at(tmp_path / "data")
    layout.ensure()
    spans = ScenarioSpans()
    now = dt.datetime.now(dt.UTC)
    for workflow_id, settle in (("wf-naked", "nak"), ("wf-termed", "term")):
        submitted = spans.publish(
            service="intake",
            subject=SUBMITTED,
            workflow_id=workflow_id,
            at=now - dt.timedelta(minutes=2),
            trace_id=spans.new_trace_id(),
        )
        spans.consume(
            submitted,
            service="parser",
            wait=dt.timedelta(milliseconds=30),
            processing=dt.timedelta(milliseconds=200),
            settle=settle,
        )
    writer = SegmentWriter(layout=layout)
    writer.write("spans", spans.table(), at=now)
    writer.close()

    for workflow_id in ("wf-naked", "wf-termed"):
        at = open_dashboard(layout.root, workflow=workflow_id)
        (chart,) = at.get("vega_lite_chart")
        bars = pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all()
        assert bars["phase"].to_pylist() == ["queue wait", "given back"]


def test_steps_show_their_start_to_the_millisecond_with_the_zone(recruitment_store: Path):
    # a run's steps fall within one second: to the second, every start read alike
    at = open_dashboard(recruitment_store, workflow=STALLED_WORKFLOW)
    (steps,) = [d for d in at.dataframe if "delivery" in d.value.columns]
    start = json.loads(steps.proto.columns)["start_time"]
    assert start["type_config"]["format"] == "YYYY-MM-DD HH:mm:ss.SSS Z"


def test_the_header_says_since_when_the_run_has_not_moved(recruitment_store: Path):
    # the stalled run published its last message 10 minutes before the store was built
    at = open_dashboard(recruitment_store, workflow=STALLED_WORKFLOW)
    (when,) = [t for t in plain_texts(at) if t.startswith("started: ")]
    assert " UTC  ·  last activity: " in when
    assert re.search(r"UTC \((10|11) min ago\)$", when), when


def test_a_completed_run_with_an_open_anomaly_says_so_at_the_top(tmp_path: Path):
    # opened from its anomaly, the page read "completed" and nothing else above the
    # fold: the duplicate was listed only below the timeline and the steps
    import datetime as dt

    from collector.segment_writer import SegmentWriter
    from correlator.engine import Correlator
    from store import StoreLayout
    from tests.dashboard.fixture_store import SUBMITTED
    from tests.dashboard.scenario_spans import ScenarioSpans

    layout = StoreLayout.at(tmp_path / "data")
    layout.ensure()
    spans = ScenarioSpans()
    now = dt.datetime.now(dt.UTC)
    for n in range(4):
        message = spans.publish(
            service="intake", subject=SUBMITTED, workflow_id=f"wf-{n}",
            at=now - dt.timedelta(minutes=10 - n), trace_id=spans.new_trace_id(),
        )  # fmt: skip
        for wait_ms in (5, 50) if n == 3 else (5,):  # wf-3's message processed twice
            spans.consume(
                message, service="parser", wait=dt.timedelta(milliseconds=wait_ms),
                processing=dt.timedelta(milliseconds=20),
            )  # fmt: skip
    writer = SegmentWriter(layout=layout, writer_id="fixture")
    writer.write("spans", spans.table(), at=now)
    writer.close()
    correlator = Correlator(data_dir=layout.root)
    correlator.cold_pass(now=now)
    correlator.write_findings()
    correlator.close()

    at = open_dashboard(layout.root, workflow="wf-3")
    assert {m.label: m.value for m in at.metric}["Status"] == "completed"
    (warning,) = at.warning
    assert warning.value.startswith("Completed, with 1 open anomaly (duplicate)")
    assert any("processed 2 times" in t for t in plain_texts(at))
    assert not open_dashboard(layout.root, workflow="wf-2").warning  # a clean run: no note
