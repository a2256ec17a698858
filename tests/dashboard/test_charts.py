"""The charts read time as their axis title says: UTC, 24-hour clock (the Overview's),
or milliseconds from a short run's start (the workflow timeline)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

import correlator
from collector.segment_writer import SegmentWriter
from correlator.queries import (
    anomalies_over_time,
    anomaly_counts,
    workflow_hops,
    workflow_messages,
)
from dashboard.charts import anomalies_chart, throughput_chart
from dashboard.waterfall import waterfall_chart, waterfall_rows
from store import StoreLayout
from tests.correlator.pipelines import correlate, history, up_to_parsed
from tests.correlator.span_shapes import SpanLog
from tests.dashboard.fixture_store import STALLED_WORKFLOW, SUBMITTED
from tests.dashboard.scenario_spans import ScenarioSpans

MINUTE = dt.timedelta(minutes=1)


def _axis_format(chart) -> str:
    return chart.to_dict()["encoding"]["x"]["axis"]["format"]


def test_time_axes_read_24_hour_utc_and_name_the_day_over_several_days() -> None:
    evening = dt.datetime(2026, 11, 26, 23, 44, tzinfo=dt.UTC)
    hour = pd.DataFrame(
        {"at": [evening, evening + dt.timedelta(minutes=5)], "status": "completed",
         "workflows": 3, "kind": "dropped", "state": "open", "anomalies": 1}
    )  # fmt: skip
    week = hour.assign(at=[evening - dt.timedelta(days=6), evening])
    assert _axis_format(throughput_chart(hour, bucket=MINUTE)) == "%H:%M"  # "23:44", not "11:44"
    assert _axis_format(anomalies_chart(hour, bucket=MINUTE)) == "%H:%M"
    assert _axis_format(throughput_chart(week, bucket=MINUTE)) == "%b %d %H:%M"


def test_tooltips_read_times_in_utc_as_the_axes_do() -> None:
    at = dt.datetime(2026, 11, 26, 23, 44, tzinfo=dt.UTC)
    frame = pd.DataFrame(
        {"at": [at], "status": "completed", "workflows": 3, "kind": "dropped", "state": "open",
         "anomalies": 1}
    )  # fmt: skip
    for chart in (throughput_chart(frame, bucket=MINUTE), anomalies_chart(frame, bucket=MINUTE)):
        spec = chart.to_dict()
        tips = {t["title"]: t["field"] for t in spec["encoding"]["tooltip"] if "title" in t}
        assert tips == {"at (UTC)": "at_utc"}  # text: the browser's zone cannot shift it
        (row,) = spec["datasets"].values()
        assert row[0]["at_utc"] == "2026-11-26 23:44"


def test_counts_are_labelled_in_whole_numbers() -> None:
    at = dt.datetime(2026, 11, 26, 23, 44, tzinfo=dt.UTC)
    frame = pd.DataFrame(  # one run per bucket: Vega labelled 0.2, 0.4... workflows
        {"at": [at], "status": "completed", "workflows": 1, "kind": "dropped", "state": "open",
         "anomalies": 1}
    )  # fmt: skip
    for chart in (throughput_chart(frame, bucket=MINUTE), anomalies_chart(frame, bucket=MINUTE)):
        axis = chart.to_dict()["encoding"]["y"]["axis"]
        assert axis["tickMinStep"] == 1 and axis["format"] == "d"


def test_time_axes_tick_no_more_often_than_their_minute_labels_change() -> None:
    # over three minutes of runs Vega ticked every 30 s: "20:05 20:05 20:06 20:06 20:07"
    at = dt.datetime(2026, 11, 26, 20, 5, tzinfo=dt.UTC)
    frame = pd.DataFrame(
        {"at": [at + dt.timedelta(minutes=m) for m in range(3)], "status": "completed",
         "workflows": 40, "kind": "dropped", "state": "open", "anomalies": 1}
    )  # fmt: skip
    for chart in (throughput_chart(frame, bucket=MINUTE), anomalies_chart(frame, bucket=MINUTE)):
        axis = chart.to_dict()["encoding"]["x"]["axis"]
        assert axis["format"] == "%H:%M"
        # Vega asks for at most span / tickMinStep + 1 ticks: two minutes apart at least
        # makes it choose whole minutes (at one minute, a two-minute span got 30 s ticks)
        assert axis["tickMinStep"] >= 120_000


def test_each_bar_spans_its_bucket_so_none_is_a_sliver_or_cut_by_the_edges() -> None:
    # drawn at its start alone, a minute's bar was a few pixels wide, and the first
    # and last were cut in half by the chart's edges
    at = dt.datetime(2026, 11, 26, 23, 10, tzinfo=dt.UTC)
    frame = pd.DataFrame(
        {"at": [at, at, at + MINUTE], "status": ["completed", "stalled", "completed"],
         "workflows": [60, 3, 50], "kind": ["dropped", "stalled", "dropped"],
         "state": ["open", "resolved", "open"], "anomalies": [2, 3, 2]}
    )  # fmt: skip
    for chart in (throughput_chart(frame, bucket=MINUTE), anomalies_chart(frame, bucket=MINUTE)):
        spec = chart.to_dict()
        assert spec["encoding"]["x2"]["field"] == "until"
        (rows,) = spec["datasets"].values()
        spans = [pd.Timestamp(r["until"]) - pd.Timestamp(r["at"]) for r in rows]
        assert spans == [pd.Timedelta(minutes=1)] * 3
        assert (spec["encoding"]["y"]["field"], spec["encoding"]["y2"]["field"]) == ("base", "top")
        count = "workflows" if "workflows" in spec["encoding"]["y"]["title"] else "anomalies"
        # stacked: a bucket's segments sit one on another, from 0 to their sum
        assert [(r["base"], r["top"]) for r in rows] == (
            [(0, 60), (60, 63), (0, 50)] if count == "workflows" else [(0, 2), (2, 5), (0, 2)]
        )


BEGAN = dt.datetime(2026, 11, 26, 14, 2, 7, 123_000, tzinfo=dt.UTC)


def _stored_run(
    data: Path, *, wait: dt.timedelta, processing: dt.timedelta
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stored run of one hop, published at ``BEGAN``: its hops and messages, as the
    Workflow detail page reads them."""
    layout = StoreLayout.at(data)
    layout.ensure()
    spans = ScenarioSpans()
    submitted = spans.publish(
        service="intake", subject=SUBMITTED, workflow_id="wf-run", at=BEGAN,
        trace_id=spans.new_trace_id(),
    )  # fmt: skip
    spans.consume(submitted, service="parser", wait=wait, processing=processing)
    writer = SegmentWriter(layout=layout)
    writer.write("spans", spans.table(), at=BEGAN)
    writer.close()
    with correlator.connect(data) as con:
        return (
            workflow_hops(con, workflow_id="wf-run"),
            workflow_messages(con, workflow_id="wf-run"),
        )


def _timeline(hops: pd.DataFrame, messages: pd.DataFrame) -> dict:
    rows = waterfall_rows(hops, messages, view_end=BEGAN + dt.timedelta(minutes=1))
    return waterfall_chart(rows, stall_at=None).to_dict()


def test_a_run_of_a_few_milliseconds_is_timed_in_ms_from_its_start(tmp_path: Path) -> None:
    # on the UTC clock (%H:%M:%S) its whole width read "14:02:07": one label
    hops, messages = _stored_run(
        tmp_path / "data",
        wait=dt.timedelta(milliseconds=1),
        processing=dt.timedelta(milliseconds=5),
    )
    spec = _timeline(hops, messages)

    bars = spec["layer"][0]
    x = bars["encoding"]["x"]
    assert (x["field"], x["type"]) == ("start_ms", "quantitative")  # round ms ticks
    assert bars["encoding"]["x2"]["field"] == "end_ms"
    assert x["title"] == "ms since the run's start, 14:02:07.123 UTC"
    assert x["axis"]["format"] == ",~f"  # 0, 0.5, 1, ... 6: no "14:02:07" repeated
    drawn = spec["datasets"][bars["data"]["name"]]
    assert min(r["start_ms"] for r in drawn) == 0.0
    assert max(r["end_ms"] for r in drawn) == pytest.approx(6.0)
    assert drawn[0]["start_utc"].startswith("14:02:07.123")  # tooltips still say when


def test_a_run_of_tens_of_seconds_keeps_the_utc_clock(tmp_path: Path) -> None:
    hops, messages = _stored_run(
        tmp_path / "data", wait=dt.timedelta(seconds=20), processing=dt.timedelta(seconds=5)
    )
    x = _timeline(hops, messages)["layer"][0]["encoding"]["x"]
    assert (x["field"], x["type"], x["title"]) == ("start", "temporal", "UTC")
    assert x["axis"]["format"] == "%H:%M:%S"


def test_the_stall_marker_stands_where_the_waiting_message_was_published(
    recruitment_store: Path,
) -> None:
    # drawn in ms from the run's start, the marker must be placed in ms too
    with correlator.connect(recruitment_store) as con:
        hops = workflow_hops(con, workflow_id=STALLED_WORKFLOW)
        messages = workflow_messages(con, workflow_id=STALLED_WORKFLOW)
    rows = waterfall_rows(hops, messages, view_end=dt.datetime.now(dt.UTC))
    waiting = rows[rows["phase"] == "never processed"]
    spec = waterfall_chart(rows, stall_at=waiting["start"].min()).to_dict()

    bars, _notes, rule, label = spec["layer"]
    assert {layer["encoding"]["x"]["field"] for layer in (rule, label)} == {"at_ms"}
    (marker,) = spec["datasets"][rule["data"]["name"]]
    waiting_bar = next(
        r for r in spec["datasets"][bars["data"]["name"]] if r["phase"] == "never processed"
    )
    assert marker["at_ms"] == waiting_bar["start_ms"] > 0


def _crashing_run(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A message whose consumer raised at each of five deliveries, each in about a
    millisecond, redelivered with a growing backoff over three seconds."""
    layout = StoreLayout.at(data)
    layout.ensure()
    spans = ScenarioSpans()
    submitted = spans.publish(
        service="intake", subject=SUBMITTED, workflow_id="wf-crash", at=BEGAN,
        trace_id=spans.new_trace_id(),
    )  # fmt: skip
    for attempt, after_ms in enumerate((2, 200, 700, 1700, 2700), start=1):
        spans.consume(
            submitted, service="parser", wait=dt.timedelta(milliseconds=after_ms),
            processing=dt.timedelta(milliseconds=1), attempt=attempt, error="crashed",
        )  # fmt: skip
    writer = SegmentWriter(layout=layout)
    writer.write("spans", spans.table(), at=BEGAN)
    writer.close()
    with correlator.connect(data) as con:
        return (
            workflow_hops(con, workflow_id="wf-crash"),
            workflow_messages(con, workflow_id="wf-crash"),
        )


def test_every_failed_attempt_of_a_retried_message_shows_red(tmp_path: Path) -> None:
    # each 1 ms attempt on a 2.7 s axis was under a pixel: five errors, no red drawn
    spec = _timeline(*_crashing_run(tmp_path / "data"))
    bars = spec["layer"][0]
    drawn = spec["datasets"][bars["data"]["name"]]
    span = max(r["end_ms"] for r in drawn) - min(r["start_ms"] for r in drawn)
    failed = [r for r in drawn if r["phase"] == "failed attempt"]
    assert len(failed) == 5
    assert all(r["end_ms"] - r["start_ms"] >= span / 200 for r in failed)
    assert failed[0]["end_utc"] == "14:02:07.126000"  # the tooltip keeps the true end


def test_a_retry_waits_from_the_end_of_the_attempt_before_it(tmp_path: Path) -> None:
    # drawn from the publish, each retry's wait began at 0 and covered the attempts
    rows = waterfall_rows(
        *_crashing_run(tmp_path / "data"), view_end=BEGAN + dt.timedelta(minutes=1)
    )
    waits = rows[rows["phase"] == "queue wait"].sort_values("attempt")
    attempts = rows[rows["phase"] == "failed attempt"].sort_values("attempt")
    assert waits["start"].iloc[0] == pd.Timestamp(BEGAN)
    assert list(waits["start"].iloc[1:]) == list(attempts["end"].iloc[:-1])


def test_the_anomalies_chart_tells_open_from_resolved_as_the_tiles_count(
    store_layout: StoreLayout,
) -> None:
    # two messages dropped; one is consumed late, so its anomaly resolves: the chart
    # counted both as if open, beside tiles that count one
    log = SpanLog()
    ours = history(log)
    late = up_to_parsed(ours, "wf-late", start=100)
    up_to_parsed(ours, "wf-lost", start=100.5)
    log.write(store_layout)
    correlate(store_layout, now_s=160)
    ours.process(late, service="scorer", start=170, end=170.5)
    log.write(store_layout)
    correlate(store_layout, now_s=200)

    con = correlator.connect(store_layout.root)
    try:
        tiles = anomaly_counts(con, since=None)
        frame = anomalies_over_time(con, since=None, bucket=dt.timedelta(hours=1))
    finally:
        con.close()
    spec = anomalies_chart(frame, bucket=dt.timedelta(hours=1)).to_dict()
    (rows,) = spec["datasets"].values()
    drawn = {(r["kind"], r["state"]): r["anomalies"] for r in rows}
    assert drawn == {("dropped", "open"): 1, ("dropped", "resolved"): 1}
    assert dict(zip(tiles["kind"], tiles["anomalies"], strict=True)) == {"dropped": 1}
    # the open ones are drawn solid, the resolved faded, and the tooltip says which
    opacity = spec["encoding"]["opacity"]
    assert opacity["field"] == "state"
    assert dict(zip(opacity["scale"]["domain"], opacity["scale"]["range"], strict=True)) == {
        "open": 1.0,
        "resolved": 0.35,
    }
    assert "state" in [t.get("field") for t in spec["encoding"]["tooltip"]]
