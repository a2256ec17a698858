"""A run of a service that dropped spans while it was in flight says its telemetry may
be incomplete: the correlator records the loss once for the service (a telemetry_gap
without a workflow), and the run's own page read "completed" with no sign of it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from collector.segment_writer import SegmentWriter
from correlator.engine import Correlator
from store import StoreLayout
from tests.dashboard.app_driver import open_dashboard, plain_texts
from tests.dashboard.scenario_spans import ScenarioSpans, heartbeat_rows

CREATED = "orders.created"
MINUTE = dt.timedelta(minutes=1)


def _store(data: Path, *, now: dt.datetime) -> Path:
    """Orders runs, one a minute from 20 minutes ago (wf-0 … wf-9), each fanned out to
    fraud and inventory; fraud heartbeats every minute, half a minute off the runs,
    and its exporter drops 1234 spans between its beats around wf-6 (14 min ago)."""
    layout = StoreLayout.at(data)
    layout.ensure()
    spans = ScenarioSpans()
    for n in range(10):
        created = spans.publish(
            service="storefront", subject=CREATED, workflow_id=f"wf-{n}",
            at=now - (20 - n) * MINUTE, trace_id=spans.new_trace_id(),
        )  # fmt: skip
        for group in ("fraud", "inventory"):
            spans.consume(created, service=group, wait=dt.timedelta(milliseconds=20),
                          processing=dt.timedelta(milliseconds=80))  # fmt: skip
    beats = [
        ("fraud", at, 0 if at < now - 14 * MINUTE else 1234)
        for at in (now - dt.timedelta(seconds=30) - m * MINUTE for m in range(21, -1, -1))
    ]
    writer = SegmentWriter(layout=layout, writer_id="fixture")
    writer.write("spans", spans.table(), at=now)
    writer.write("heartbeats", heartbeat_rows(beats), at=now)
    writer.close()
    correlator = Correlator(data_dir=layout.root)
    try:
        correlator.cold_pass(now=now)
        correlator.write_findings()
    finally:
        correlator.close()
    return layout.root


def test_a_run_in_flight_while_its_service_dropped_spans_says_its_picture_may_be_incomplete(
    tmp_path: Path,
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    data = _store(tmp_path / "data", now=now)

    at = open_dashboard(data, workflow="wf-6")  # begun 14 min ago, 30 s after a beat

    assert {m.label: m.value for m in at.metric}["Status"] == "completed"
    assert any(w.value.startswith("Telemetry may be incomplete") for w in at.warning)
    reported = now - 14 * MINUTE + dt.timedelta(seconds=30)
    assert (
        f"`fraud` (instance fraud-1) reported 1,234 spans dropped by its exporter "
        f"at {reported:%H:%M:%S} UTC"
    ) in plain_texts(at)


def test_runs_before_and_after_the_spans_were_dropped_say_nothing_of_it(tmp_path: Path) -> None:
    data = _store(tmp_path / "data", now=dt.datetime.now(dt.UTC).replace(microsecond=0))

    for workflow_id in ("wf-5", "wf-7"):
        at = open_dashboard(data, workflow=workflow_id)
        assert not any("Telemetry may be incomplete" in w.value for w in at.warning), workflow_id
        assert not any("spans dropped by its exporter" in t for t in plain_texts(at))
