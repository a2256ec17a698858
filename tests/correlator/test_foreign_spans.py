"""Spans from another language's OpenTelemetry NATS instrumentation: no choreo.*
attributes, no message ids, no consumer groups, no heartbeats. Workflows still
correlate through the standard messaging attributes and parent/child or links."""

from __future__ import annotations

import pytest

from correlator.engine import Correlator
from correlator.findings import read_findings
from correlator.thresholds import Thresholds
from store import StoreLayout
from tests.correlator.pipelines import (
    correlate,
    forgetful_watcher,
    healthy_run,
    history,
    time_passes,
)
from tests.correlator.span_shapes import ForeignSpans, OurSpans, SpanLog, at


def _orders(go: ForeignSpans, *, start: float, ship: bool = True) -> str:
    placed = go.publish("gateway", "orders.placed", at_s=start)
    paid = go.step(
        placed, service="billing", start=start + 0.2, end=start + 0.3, emits="orders.paid"
    )
    if ship:
        go.process(paid, service="shipping", start=start + 0.4, end=start + 0.5)
    return placed.trace_id


def _watching(store_layout: StoreLayout, **options: float) -> tuple[SpanLog, OurSpans, Correlator]:
    """A watcher over a store of our spans (each names its workflow), after its cold
    pass, and the log foreign spans are added to."""
    log = SpanLog()
    ours = history(log)
    log.write(store_layout)
    engine = Correlator(
        data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=5), **options
    )
    engine.cold_pass(now=at(50))
    return log, ours, engine


@pytest.mark.parametrize("links_only", [False, True], ids=["parent-child", "links-only"])
def test_foreign_healthy_workflows_are_completed(
    store_layout: StoreLayout, links_only: bool
) -> None:
    log = SpanLog()
    go = ForeignSpans(log, links_only=links_only)
    ids = [_orders(go, start=float(i)) for i in range(6)]
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=100)

    assert outcome.anomalies == []
    assert outcome.statuses == {i: ("completed", None, None) for i in ids}


@pytest.mark.parametrize("links_only", [False, True], ids=["parent-child", "links-only"])
def test_foreign_message_never_consumed_is_dropped(
    store_layout: StoreLayout, links_only: bool
) -> None:
    log = SpanLog()
    go = ForeignSpans(log, links_only=links_only)
    for i in range(6):
        _orders(go, start=float(i))
    stuck = _orders(go, start=50, ship=False)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=100)

    assert outcome.kinds() == {("dropped", stuck, "orders.paid")}
    assert outcome.of("dropped")[0]["service"] == "shipping"
    assert outcome.statuses[stuck] == ("stalled", "orders.paid → shipping", "dropped")


def test_foreign_handler_error_is_failed(store_layout: StoreLayout) -> None:
    log = SpanLog()
    go = ForeignSpans(log)
    for i in range(6):
        _orders(go, start=float(i))
    placed = go.publish("gateway", "orders.placed", at_s=50)
    go.process(placed, service="billing", start=50.1, end=50.2, error="card declined")
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=100)

    assert outcome.kinds() == {("failed", placed.trace_id, "orders.placed")}


def test_foreign_handler_stopped_past_its_deadline_is_hung_from_when_it_started(
    store_layout: StoreLayout,
) -> None:
    # no receive span in this instrumentation: the hang is dated by the attempt itself
    log = SpanLog()
    go = ForeignSpans(log)
    for i in range(6):
        _orders(go, start=float(i))
    placed = go.publish("gateway", "orders.placed", at_s=50)
    go.process(placed, service="billing", start=50.1, end=90.1, error="cancelled")
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=100)

    assert outcome.kinds() == {("hung", placed.trace_id, "orders.placed")}
    detail = outcome.of("hung")[0]["detail"]
    assert "unknown time" not in detail
    assert "started on `orders.placed` msg" in detail and "at 12:00:50 UTC" in detail


def test_foreign_settle_span_naming_no_message_settles_its_parents_message(
    store_layout: StoreLayout,
) -> None:
    # a settle span with no message id, no link and no subject, child of the process
    # span: its message is its parent's
    log = SpanLog()
    go = ForeignSpans(log)
    for i in range(6):
        _orders(go, start=float(i))
    placed = go.publish("gateway", "orders.placed", at_s=50)
    trace_id, process_span = go.process(
        placed, service="billing", start=50.1, end=50.2, error="card declined"
    )
    log.add(
        trace_id=trace_id, parent_span_id=process_span, name="term", kind="client",
        service_name="billing", start=50.2, end=50.21, operation="settle",
        status_message="card declined for good",
    )  # fmt: skip
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=100)

    assert outcome.kinds() == {("dead_lettered", placed.trace_id, "orders.placed")}
    (dead,) = outcome.of("dead_lettered")
    assert dead["message_id"] == placed.span_id  # a publish without an id is its span


def test_foreign_workflows_arriving_after_a_cold_pass_are_one_workflow_each(
    store_layout: StoreLayout,
) -> None:
    log, _, engine = _watching(store_layout)

    go = ForeignSpans(log, links_only=True)  # a new trace per consumer, joined by links
    ids = [_orders(go, start=60.0 + i) for i in range(3)]
    log.write(store_layout)
    engine.tick(now=at(70))
    engine.write_findings()
    engine.close()

    judged = {  # the correlator's verdicts, one per workflow it made out
        row["workflow_id"]: row["status"]
        for name in ("workflow_status", "workflow_status_recent")
        for row in read_findings(store_layout, name).to_pylist()
        if not row["workflow_id"].startswith("wf-")
    }
    assert judged == dict.fromkeys(ids, "completed")


def test_foreign_consumer_in_a_later_tick_joins_its_workflow_through_its_link(
    store_layout: StoreLayout,
) -> None:
    log, _, engine = _watching(store_layout)
    go = ForeignSpans(log, links_only=True)
    placed = go.publish("gateway", "orders.placed", at_s=60)
    paid = go.step(placed, service="billing", start=60.2, end=60.3, emits="orders.paid")
    log.write(store_layout)
    engine.tick(now=at(61))

    go.process(paid, service="shipping", start=62, end=62.1)  # its own trace, linked
    log.write(store_layout)
    engine.tick(now=at(63))
    engine.write_findings()
    engine.close()

    full, recent = (
        read_findings(store_layout, name).to_pylist()
        for name in ("workflow_status", "workflow_status_recent")
    )
    latest = {row["workflow_id"]: row["status"] for row in [*full, *recent]}
    assert {wf: status for wf, status in latest.items() if not wf.startswith("wf-")} == {
        placed.trace_id: "completed"
    }


def test_foreign_consumer_whose_producers_left_memory_still_joins_its_workflow(
    store_layout: StoreLayout,
) -> None:
    log, _, engine = _watching(store_layout, recent_s=5, evict_every_ticks=1)
    go = ForeignSpans(log, links_only=True)
    placed = go.publish("gateway", "orders.placed", at_s=60)
    paid = go.step(placed, service="billing", start=60.2, end=60.3, emits="orders.paid")
    log.write(store_layout)
    engine.tick(now=at(61))
    go.publish("gateway", "orders.placed", at_s=100)  # later spans: the first workflow,
    log.write(store_layout)  # completed and quiet, leaves memory
    engine.tick(now=at(101))
    (in_memory,) = engine.con.execute(
        "SELECT count(*) FROM work_spans WHERE trace_id = $t", {"t": placed.trace_id}
    ).fetchone()
    assert in_memory == 0

    shipping, _ = go.process(paid, service="shipping", start=102, end=102.1)  # own trace
    log.write(store_layout)
    engine.tick(now=at(103))
    judged = {
        wf: status
        for wf, status in engine.con.execute(
            "SELECT workflow_id, status FROM d_workflow_status"
        ).fetchall()
    }
    engine.close()

    # shipping's span is judged within its workflow (the first trace's), not as a
    # workflow of its own or of billing's trace
    assert judged.get(placed.trace_id) == "completed"
    assert shipping not in judged and paid.trace_id not in judged


def test_a_cold_pass_keeps_a_foreign_workflow_whole_across_its_links(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    history(log)
    go = ForeignSpans(log, links_only=True)
    placed = go.publish("gateway", "orders.placed", at_s=60)
    paid = go.step(placed, service="billing", start=96, end=96.1, emits="orders.paid")
    log.write(store_layout)
    engine = Correlator(
        data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=5), recent_s=5
    )
    # billing's trace is recent; the gateway's, history, is kept with it: its link
    engine.cold_pass(now=at(97))
    held = {t for (t,) in engine.con.execute("SELECT DISTINCT trace_id FROM work_spans").fetchall()}
    assert {paid.trace_id, placed.trace_id} <= held

    shipping, _ = go.process(paid, service="shipping", start=98, end=98.1)
    log.write(store_layout)
    engine.tick(now=at(99))
    verdicts = engine.con.execute("SELECT workflow_id, status FROM d_workflow_status")
    judged = dict(verdicts.fetchall())
    engine.close()

    assert judged.get(placed.trace_id) == "completed"
    assert shipping not in judged and paid.trace_id not in judged


def test_a_tick_rolled_back_after_eviction_still_knows_which_spans_lack_a_workflow(
    store_layout: StoreLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, ours, engine = _watching(store_layout, recent_s=5, evict_every_ticks=2)
    go = ForeignSpans(log, links_only=True)
    placed = go.publish("gateway", "orders.placed", at_s=60)
    paid = go.step(placed, service="billing", start=60.2, end=60.3, emits="orders.paid")
    shipping, _ = go.process(paid, service="shipping", start=60.4, end=60.5)
    log.write(store_layout)
    engine.tick(now=at(61))
    healthy_run(ours, "wf-next", start=100)  # newer spans: the foreign chain is quiet
    log.write(store_layout)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError("No space left on device")

    with monkeypatch.context() as patch:  # the second tick evicts the chain, then fails
        patch.setattr(engine.signals, "evict", disk_full)
        with pytest.raises(OSError):
            engine.tick(now=at(102))
    log.add(  # a span of ours, naming its workflow, linked to billing's publish
        trace_id="ab" * 16, name="process orders.paid", kind="consumer", service_name="audit",
        start=102.5, end=102.6, operation="process", subject="orders.paid",
        workflow_id="wf-audit", link_trace_id=paid.trace_id, link_span_id=paid.span_id,
    )  # fmt: skip
    log.write(store_layout)
    engine.tick(now=at(103))
    verdicts = engine.con.execute("SELECT workflow_id, status FROM d_workflow_status")
    judged = dict(verdicts.fetchall())
    engine.close()

    assert judged.get(placed.trace_id) == "completed"  # the chain is one workflow
    assert shipping not in judged and paid.trace_id not in judged


def test_a_foreign_root_stored_again_after_its_workflow_left_memory_brings_back_its_consumers(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    go = ForeignSpans(log, links_only=True)  # each consumer in a trace of its own
    for i in range(6):
        _orders(go, start=20 + i)  # the model learns who consumes orders.placed
    placed = go.publish("gateway", "orders.placed", at_s=100)
    paid = go.step(placed, service="billing", start=100.2, end=100.3, emits="orders.paid")
    go.process(paid, service="shipping", start=100.4, end=100.5)
    root = next(row for row in log.rows if row["span_id"] == placed.span_id)
    log.write(store_layout)
    engine = forgetful_watcher(store_layout)
    engine.cold_pass(now=at(110))
    time_passes(engine, ours, store_layout, at_s=200)  # the order, completed, leaves memory
    held = {t for (t,) in engine.con.execute("SELECT DISTINCT trace_id FROM work_spans").fetchall()}
    assert placed.trace_id not in held and paid.trace_id not in held

    log.rows = [{**root, "received_at": at(300)}]  # its batch ingested again
    log.write(store_layout)
    new = engine.tick(now=at(301))
    verdicts = engine.con.execute("SELECT workflow_id, status FROM d_workflow_status")
    judged = dict(verdicts.fetchall())
    engine.close()

    assert new == []
    assert judged.get(placed.trace_id) == "completed"
