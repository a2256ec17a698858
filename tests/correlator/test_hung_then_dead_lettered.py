"""A handler that hangs for good: JetStream delivers its message again after its ack
wait (each delivery hangs too) and dead-letters it past its max deliveries. That is
one fault, told once, as `hung`: the user is not alerted again when the message is
dead-lettered, whether or not a redelivery reset the handler's wait in between."""

from __future__ import annotations

from correlator.engine import Correlator
from correlator.thresholds import Thresholds
from store import StoreLayout
from tests.correlator.pipelines import history, read_outcome, up_to_parsed
from tests.correlator.span_shapes import SpanLog, at


def _engine(layout: StoreLayout) -> Correlator:
    return Correlator(data_dir=layout.root, thresholds=Thresholds(min_deadline_s=5))


def test_a_hung_handler_whose_message_is_redelivered_then_dead_lettered_is_alerted_once(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)  # every service beats until 200 s
    parsed = up_to_parsed(ours, "wf-hang", start=100)
    ours.receive(parsed, service="scorer", at_s=100.5)  # the handler never returns
    log.write(store_layout)
    engine = _engine(store_layout)
    (hung,) = [a for a in engine.cold_pass(now=at(107)) if a["workflow_id"] == "wf-hang"]
    assert hung["kind"] == "hung"

    told = [hung]
    for delivery_at in (108.0, 115.5, 123.0):  # the ack wait (7.5 s) ran out: again
        ours.receive(parsed, service="scorer", at_s=delivery_at)
        log.write(store_layout)
        told += engine.tick(now=at(delivery_at + 1))
    log.bus_event("max_deliveries", parsed, at_s=130.5, consumer="scorer")
    log.write(store_layout)
    told += engine.tick(now=at(131))
    told += engine.tick(now=at(140))
    engine.write_findings()
    engine.close()

    assert [(a["kind"], a["workflow_id"]) for a in told] == [("hung", "wf-hang")]
    outcome = read_outcome(store_layout)
    (row,) = [a for a in outcome.anomalies if a["workflow_id"] == "wf-hang"]
    assert (row["anomaly_id"], row["resolved_at"]) == (hung["anomaly_id"], None)
    # the workflow's status says how it stands now
    assert outcome.statuses["wf-hang"][0::2] == ("stalled", "dead_lettered")


def test_a_dead_letter_of_a_handler_that_hung_at_every_delivery_says_none_finished(
    store_layout: StoreLayout,
) -> None:
    # the step's deadline (10 s) is above the ack wait (7.5 s): each redelivery begins
    # the handler's wait again before it is hung, and the dead letter is the first sign
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-hang", start=100)
    for delivery_at in (100.5, 108.0, 115.5, 123.0):  # every delivery's handler hangs
        ours.receive(parsed, service="scorer", at_s=delivery_at)
    log.bus_event("max_deliveries", parsed, at_s=130.5, consumer="scorer")
    log.write(store_layout)
    engine = Correlator(data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=10))
    (dead,) = [a for a in engine.cold_pass(now=at(131)) if a["workflow_id"] == "wf-hang"]
    engine.close()

    assert dead["kind"] == "dead_lettered"
    assert (
        "received 4 times, no attempt finished (the handler hung each time); "
        "dead-lettered (past its max deliveries)" in dead["detail"]
    )


def test_a_dead_letter_of_a_handler_that_failed_then_hung_counts_the_deliveries_unfinished(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-hang", start=100)
    ours.process(parsed, service="scorer", start=100.5, end=100.6,
                 error="ValueError: bad cv", settle="nak")  # fmt: skip
    for delivery_at in (108.0, 115.5):  # then its handler hangs
        ours.receive(parsed, service="scorer", at_s=delivery_at)
    log.bus_event("max_deliveries", parsed, at_s=123.0, consumer="scorer")
    log.write(store_layout)
    engine = Correlator(data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=10))
    (dead,) = [a for a in engine.cold_pass(now=at(124)) if a["workflow_id"] == "wf-hang"]
    engine.close()

    assert dead["kind"] == "dead_lettered"
    assert "after 1 failed attempt" in dead["detail"]
    assert "2 of its 3 deliveries never finished (the handler hung)" in dead["detail"]
    assert "last error: ValueError: bad cv" in dead["detail"]
