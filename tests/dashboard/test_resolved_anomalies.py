"""A resolved anomaly says so where a reader looks first, beside its kind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from collector.segment_writer import SegmentWriter
from correlator.engine import Correlator
from store import StoreLayout
from tests.dashboard.app_driver import open_dashboard
from tests.dashboard.fixture_store import PARSED, SUBMITTED
from tests.dashboard.scenario_spans import ScenarioSpans


def _judge(layout: StoreLayout, spans: ScenarioSpans, *, now: dt.datetime) -> None:
    writer = SegmentWriter(layout=layout, writer_id="fixture")
    writer.write("spans", spans.table(), at=now)
    writer.close()
    correlator = Correlator(data_dir=layout.root)
    try:
        correlator.cold_pass(now=now)
        correlator.write_findings()
    finally:
        correlator.close()


def _store_with_a_resolved_stall(data: Path) -> Path:
    """``wf-late``'s scorer got its message a minute past the deadline (its consumer
    was down, then back): stalled when first judged, completed since; and ``wf-stuck``,
    still stalled."""
    layout = StoreLayout.at(data)
    layout.ensure()
    now = dt.datetime.now(dt.UTC)
    spans = ScenarioSpans()
    parsed = {}
    for n, workflow_id in enumerate(("wf-ok-0", "wf-ok-1", "wf-ok-2", "wf-late", "wf-stuck")):
        at = now - dt.timedelta(minutes=10 - n)
        trace = spans.new_trace_id()
        submitted = spans.publish(
            service="intake", subject=SUBMITTED, workflow_id=workflow_id, at=at, trace_id=trace
        )
        parse = spans.consume(
            submitted, service="parser", wait=dt.timedelta(milliseconds=10),
            processing=dt.timedelta(milliseconds=50),
        )  # fmt: skip
        parsed[workflow_id] = spans.publish(
            service="parser", subject=PARSED, workflow_id=workflow_id,
            at=at + dt.timedelta(milliseconds=70), trace_id=trace, parent_span_id=parse,
        )  # fmt: skip
        if workflow_id.startswith("wf-ok"):
            spans.consume(
                parsed[workflow_id], service="scorer", wait=dt.timedelta(milliseconds=10),
                processing=dt.timedelta(milliseconds=50),
            )  # fmt: skip
    _judge(layout, spans, now=now - dt.timedelta(minutes=3))
    spans.consume(
        parsed["wf-late"], service="scorer", wait=dt.timedelta(minutes=4),
        processing=dt.timedelta(milliseconds=50),
    )  # fmt: skip
    _judge(layout, spans, now=now)  # the spans already stored are stored once
    return layout.root


def test_a_completed_runs_resolved_stall_reads_resolved_beside_its_kind(tmp_path: Path):
    # the table read "stalled … never received by consumer group scorer" under a
    # "completed" status; that it was over was in its last column, off the page
    data = _store_with_a_resolved_stall(tmp_path / "data")
    at = open_dashboard(data, workflow="wf-late")
    assert {m.label: m.value for m in at.metric}["Status"] == "completed"
    (table,) = [d.value for d in at.dataframe if "detail" in d.value.columns]
    assert list(table.columns[:2]) == ["kind", "state"]
    assert table["state"].iloc[0].startswith("resolved ")
    assert table["state"].iloc[0].endswith(" UTC")

    stuck = open_dashboard(data, workflow="wf-stuck")
    (table,) = [d.value for d in stuck.dataframe if "detail" in d.value.columns]
    assert list(table["state"]) == ["still open"]


def test_the_anomalies_page_with_resolved_ones_says_which_are(tmp_path: Path):
    data = _store_with_a_resolved_stall(tmp_path / "data")
    at = open_dashboard(data, page="views/anomalies.py")
    at.toggle(key="anomaly_resolved").set_value(True).run()
    (table,) = [d.value for d in at.dataframe]
    states = dict(zip(table["workflow_id"], table["state"], strict=True))
    assert states["wf-stuck"] == "still open"
    assert states["wf-late"].startswith("resolved ")
    assert list(table.columns[:2]) == ["open", "state"]  # the link, then the state
