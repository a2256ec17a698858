"""The dashboard's fixture store: a recruitment pipeline with its faults.

intake publishes ``recruit.cv.submitted`` → parser publishes ``recruit.cv.parsed``
→ scorer publishes ``recruit.candidate.scored`` → notifier ends the workflow.

- ``COMPLETED_COUNT`` workflows go all the way through;
- ``STALLED_WORKFLOW``'s ``recruit.cv.parsed`` is published and never received;
- ``FAILED_WORKFLOW``'s scorer raises on all three deliveries;
- ``HOSTILE_WORKFLOW`` completes, carrying ``<script>`` and markdown in its error
  text, attributes and audit capture, which must render as plain text.

Spans are written as segments with the collector's ``SegmentWriter``, shaped
like the instrumentation's (see scenario_spans.py); then the real correlator
makes one pass, writing its findings (statuses, anomalies, the learned model).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from collector.segment_writer import SegmentWriter
from correlator.engine import Correlator
from store import StoreLayout
from tests.dashboard.scenario_spans import ScenarioSpans, consumer_lag_rows, heartbeat_rows

SUBMITTED = "recruit.cv.submitted"
PARSED = "recruit.cv.parsed"
SCORED = "recruit.candidate.scored"

COMPLETED_COUNT = 6
STALLED_WORKFLOW = "wf-stalled-7f3"
FAILED_WORKFLOW = "wf-failed-a91"
HOSTILE_WORKFLOW = "wf-hostile-0b2"
HOSTILE_TEXT = "<script>alert('pwned')</script> **bold** [click](http://evil.example)"
SCORER_ERROR = "scorer model timed out"


def completed_workflow_id(n: int) -> str:
    return f"wf-ok-{n:03d}"


def build_recruitment_store(
    data_dir: Path, *, now: dt.datetime | None = None, more_stalled: int = 0
) -> StoreLayout:
    """Write the scenario's spans and heartbeats into a new store at ``data_dir``, with
    ``more_stalled`` runs stalled as the scenario's own (ids ``wf-stalled-<n>``)."""
    now = now or dt.datetime.now(dt.UTC)
    layout = StoreLayout.at(data_dir)
    layout.ensure()
    spans = ScenarioSpans()
    start = now - dt.timedelta(minutes=30)
    for n in range(COMPLETED_COUNT):
        _full_run(spans, completed_workflow_id(n), at=start + dt.timedelta(minutes=2 * n))
    _stalled_run(spans, at=now - dt.timedelta(minutes=10))
    for n in range(more_stalled):
        _stalled_run(
            spans, at=now - dt.timedelta(minutes=9, seconds=n), workflow_id=f"wf-stalled-{n}"
        )
    _failed_run(spans, at=now - dt.timedelta(minutes=8))
    _full_run(spans, HOSTILE_WORKFLOW, at=now - dt.timedelta(minutes=5), hostile=True)
    writer = SegmentWriter(layout=layout, writer_id="fixture")
    try:
        writer.write("spans", spans.table(), at=now)
        beats = [
            ("intake", now - dt.timedelta(seconds=2), 0),
            ("parser", now - dt.timedelta(seconds=3), 0),
            ("scorer", now - dt.timedelta(seconds=4), 0),
            ("enricher", now - dt.timedelta(minutes=9), 0),  # silent: its heartbeats stopped
            ("notifier", now - dt.timedelta(seconds=1), 17),  # its exporter dropped spans
        ]
        writer.write("heartbeats", heartbeat_rows(beats), at=now)
        # the scorer restarted since this beat: its counters count from zero again
        restarted = [("scorer", now - dt.timedelta(minutes=3), 0)]
        writer.write("heartbeats", heartbeat_rows(restarted, received=95), at=now)
        lag = [
            ("audit--recruit_ALL", now - dt.timedelta(minutes=5), 0, 0),  # deleted since
            ("enricher--recruit_cv_parsed", now - dt.timedelta(seconds=20), 3, 0),
            ("enricher--recruit_cv_parsed", now - dt.timedelta(seconds=10), 7, 0),  # down
            ("scorer--recruit_cv_parsed", now - dt.timedelta(seconds=10), 0, 1),
        ]
        writer.write("consumer_lag", consumer_lag_rows(lag), at=now)
    finally:
        writer.close()
    correlator = Correlator(data_dir=layout.root)
    try:
        correlator.cold_pass(now=now)
        correlator.write_findings()
        correlator.write_model()
    finally:
        correlator.close()
    return layout


def build_store_of_many_segments(data_dir: Path, *, workflows: int, segments: int) -> Path:
    """A store of ``workflows`` completed runs spread over ``segments`` segments, as a
    collector writing a small batch every second leaves it; no correlator pass."""
    layout = StoreLayout.at(data_dir)
    layout.ensure()
    spans = ScenarioSpans()
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    for n in range(workflows):
        _full_run(spans, completed_workflow_id(n), at=start + dt.timedelta(seconds=n))
    table = spans.table()
    size = -(-table.num_rows // segments)
    writer = SegmentWriter(layout=layout, writer_id="busy")
    try:
        for n in range(segments):
            writer.write("spans", table.slice(n * size, size))
    finally:
        writer.close()
    return layout.root


def _full_run(spans: ScenarioSpans, workflow_id: str, *, at: dt.datetime, hostile: bool = False):
    trace = spans.new_trace_id()
    extra = {"candidate.note": HOSTILE_TEXT} if hostile else {}
    submitted = spans.publish(
        service="intake",
        subject=SUBMITTED,
        workflow_id=workflow_id,
        at=at,
        trace_id=trace,
        extra_attributes=extra,
    )
    parse = spans.consume(
        submitted,
        service="parser",
        wait=dt.timedelta(milliseconds=40),
        processing=dt.timedelta(milliseconds=300),
        audit=(HOSTILE_TEXT, "parsed: " + HOSTILE_TEXT) if hostile else None,
    )
    parsed = spans.publish(
        service="parser",
        subject=PARSED,
        workflow_id=workflow_id,
        at=at + dt.timedelta(milliseconds=330),
        trace_id=trace,
        parent_span_id=parse,
    )
    if hostile:
        spans.consume(
            parsed,
            service="scorer",
            wait=dt.timedelta(milliseconds=20),
            processing=dt.timedelta(milliseconds=100),
            error=HOSTILE_TEXT,
        )
    score = spans.consume(
        parsed,
        service="scorer",
        wait=dt.timedelta(milliseconds=150),
        processing=dt.timedelta(milliseconds=900),
        attempt=2 if hostile else 1,
    )
    scored = spans.publish(
        service="scorer",
        subject=SCORED,
        workflow_id=workflow_id,
        at=at + dt.timedelta(milliseconds=1400),
        trace_id=trace,
        parent_span_id=score,
    )
    spans.consume(
        scored,
        service="notifier",
        wait=dt.timedelta(milliseconds=30),
        processing=dt.timedelta(milliseconds=80),
    )


def _stalled_run(
    spans: ScenarioSpans, *, at: dt.datetime, workflow_id: str = STALLED_WORKFLOW
) -> None:
    trace = spans.new_trace_id()
    submitted = spans.publish(
        service="intake", subject=SUBMITTED, workflow_id=workflow_id, at=at, trace_id=trace
    )
    parse = spans.consume(
        submitted,
        service="parser",
        wait=dt.timedelta(milliseconds=35),
        processing=dt.timedelta(milliseconds=280),
    )
    spans.publish(
        service="parser",
        subject=PARSED,
        workflow_id=workflow_id,
        at=at + dt.timedelta(milliseconds=320),
        trace_id=trace,
        parent_span_id=parse,
    )  # ...and no scorer ever receives it: dropped.


def _failed_run(spans: ScenarioSpans, *, at: dt.datetime) -> None:
    trace = spans.new_trace_id()
    submitted = spans.publish(
        service="intake", subject=SUBMITTED, workflow_id=FAILED_WORKFLOW, at=at, trace_id=trace
    )
    parse = spans.consume(
        submitted,
        service="parser",
        wait=dt.timedelta(milliseconds=30),
        processing=dt.timedelta(milliseconds=250),
    )
    parsed = spans.publish(
        service="parser",
        subject=PARSED,
        workflow_id=FAILED_WORKFLOW,
        at=at + dt.timedelta(milliseconds=300),
        trace_id=trace,
        parent_span_id=parse,
    )
    for attempt in (1, 2, 3):
        spans.consume(
            parsed,
            service="scorer",
            wait=dt.timedelta(seconds=2 * attempt),
            processing=dt.timedelta(milliseconds=500),
            attempt=attempt,
            error=SCORER_ERROR,
        )
