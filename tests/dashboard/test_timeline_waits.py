"""The timeline names the step a stuck run waits on, as its explanation does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from collector.segment_writer import SegmentWriter
from correlator.engine import Correlator
from store import StoreLayout
from tests.dashboard.app_driver import open_dashboard
from tests.dashboard.scenario_spans import ScenarioSpans

CREATED = "orders.created"
AUTHORIZED = "orders.payment.authorized"
FAN_OUT = ("fraud", "inventory", "payment")


def _orders_store(data: Path, *, stuck: dict[str, str]) -> Path:
    """Completed orders runs (``orders.created`` fanned out to fraud, inventory and
    payment; payment's ``orders.payment.authorized`` to shipping alone) that teach the
    correlator its model, then one run per ``stuck`` entry, whose workflow id is the
    key: ``payment`` never receives its ``orders.created`` (``"dropped"``), or receives
    it and its handler never returns (``"payment hangs"``), or shipping's does
    (``"shipping hangs"``)."""
    layout = StoreLayout.at(data)
    layout.ensure()
    spans = ScenarioSpans()
    now = dt.datetime.now(dt.UTC)
    runs = [(f"wf-ok-{n}", None) for n in range(6)] + list(stuck.items())
    for n, (workflow_id, fault) in enumerate(runs):
        created = spans.publish(
            service="storefront", subject=CREATED, workflow_id=workflow_id,
            at=now - dt.timedelta(minutes=20 - n), trace_id=spans.new_trace_id(),
        )  # fmt: skip
        for group in FAN_OUT:
            if group == "payment" and fault == "dropped":
                continue
            handled = spans.consume(
                created, service=group, wait=dt.timedelta(milliseconds=20),
                processing=dt.timedelta(milliseconds=80),
                hangs=group == "payment" and fault == "payment hangs",
            )  # fmt: skip
        if fault in (None, "shipping hangs"):  # payment handled it: it goes on
            authorized = spans.publish(
                service="payment", subject=AUTHORIZED, workflow_id=workflow_id,
                at=created.at + dt.timedelta(milliseconds=90), trace_id=created.trace_id,
                parent_span_id=handled,
            )  # fmt: skip
            spans.consume(
                authorized, service="shipping", wait=dt.timedelta(milliseconds=10),
                processing=dt.timedelta(milliseconds=30), hangs=fault == "shipping hangs",
            )  # fmt: skip
    writer = SegmentWriter(layout=layout, writer_id="fixture")
    writer.write("spans", spans.table(), at=now)
    writer.close()
    correlator = Correlator(data_dir=layout.root)
    try:
        correlator.cold_pass(now=now)
        correlator.write_findings()
        correlator.write_model()
    finally:
        correlator.close()
    return layout.root


def _waiting_rows(data: Path, workflow_id: str) -> list[str]:
    at = open_dashboard(data, workflow=workflow_id)
    (chart,) = at.get("vega_lite_chart")
    bars = pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pylist()
    return [b["row"] for b in bars if b["phase"] == "never processed"]


def test_a_fan_out_run_stalled_on_one_group_shows_that_group_waiting(tmp_path: Path):
    # fraud and inventory processed the order, payment never got it: the message's
    # outcome reads "processed", and the timeline drew no bar for payment, the step
    # the page's explanation says the run waits on
    data = _orders_store(tmp_path / "data", stuck={"wf-no-payment": "dropped"})
    at = open_dashboard(data, workflow="wf-no-payment")
    assert {m.label: m.value for m in at.metric}["Status"] == "stalled"
    (waiting,) = _waiting_rows(data, "wf-no-payment")
    assert waiting.startswith(f"{CREATED} → payment (not received) · msg ")


@pytest.mark.parametrize(
    ("fault", "subject", "group"),
    [("shipping hangs", AUTHORIZED, "shipping"), ("payment hangs", CREATED, "payment")],
)
def test_a_message_whose_handler_hangs_reads_received_not_never_received(
    tmp_path: Path, fault: str, subject: str, group: str
):
    # the group received the message (its receive span) and its handler never
    # returned: shipping's bar said "(not received)", against the explanation above
    # it, and payment's, in a fan-out the other groups processed, was not drawn
    data = _orders_store(tmp_path / "data", stuck={"wf-hangs": fault})
    (waiting,) = _waiting_rows(data, "wf-hangs")
    assert waiting.startswith(f"{subject} → {group} (received, never finished) · msg ")


def test_a_completed_fan_out_run_has_nothing_waiting(tmp_path: Path):
    data = _orders_store(tmp_path / "data", stuck={})
    assert _waiting_rows(data, "wf-ok-5") == []
