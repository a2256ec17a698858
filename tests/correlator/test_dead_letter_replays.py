"""A dead letter replayed by an operator: the message is published again from
``dlq.<subject>`` to its own subject, its id and workflow kept. The run goes back
to the step it was dead-lettered at; it neither deviates nor stays dead-lettered."""

from __future__ import annotations

from correlator.engine import Correlator
from correlator.thresholds import Thresholds
from store import StoreLayout
from tests.correlator.pipelines import PARSED, SCORED, correlate, history, up_to_parsed
from tests.correlator.span_shapes import OurSpans, Published, SpanLog, at


def _dead_lettered_at_the_scorer(log: SpanLog) -> tuple[OurSpans, Published]:
    """History, then wf-dlq's PARSED message terminated by the scorer at 101 s and
    republished to the dead-letter subject, as an Agent does."""
    ours = history(log, heartbeats_until=400)
    parsed = up_to_parsed(ours, "wf-dlq", start=100)
    span = ours.process(parsed, service="scorer", start=101, end=101.2, error="boom", settle="term")
    ours.publish(
        "scorer", f"dlq.{PARSED}", workflow_id="wf-dlq", at_s=101.1,
        trace_id=parsed.trace_id, parent_span_id=span, message_id=parsed.message_id,
    )  # fmt: skip
    return ours, parsed


def _replayed(ours: OurSpans, parsed: Published, *, at_s: float) -> Published:
    """An operator's tool publishes the dead letter again, outside any handler."""
    return ours.publish(
        "ops", PARSED, workflow_id="wf-dlq", at_s=at_s, message_id=parsed.message_id
    )


def test_a_dead_letter_replayed_and_processed_is_no_deviation(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours, parsed = _dead_lettered_at_the_scorer(log)
    again = _replayed(ours, parsed, at_s=160)
    scored = ours.step(again, service="scorer", start=160.5, end=160.8, emits=SCORED)
    ours.process(scored, service="notifier", start=161, end=161.2)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=190)

    # it was read as `ops` publishing the run's first event a second time
    assert outcome.kinds() == set()
    assert outcome.statuses["wf-dlq"] == ("completed", None, None)


def test_a_replayed_dead_letter_is_waited_on_again_not_still_dead_lettered(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours, parsed = _dead_lettered_at_the_scorer(log)
    log.write(store_layout)
    assert correlate(store_layout, now_s=150).statuses["wf-dlq"][0::2] == (
        "stalled",
        "dead_lettered",
    )
    _replayed(ours, parsed, at_s=160)
    log.write(store_layout)

    just_replayed = correlate(store_layout, now_s=162)  # the deadline is 5 s

    assert just_replayed.kinds() == set()
    assert just_replayed.statuses["wf-dlq"] == ("in_flight", f"{PARSED} → scorer", None)


def test_a_replayed_dead_letter_its_consumer_never_gets_is_dropped_since_the_replay(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours, parsed = _dead_lettered_at_the_scorer(log)
    _replayed(ours, parsed, at_s=160)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=220)

    assert outcome.kinds() == {("dropped", "wf-dlq", PARSED)}
    assert outcome.statuses["wf-dlq"] == ("stalled", f"{PARSED} → scorer", "dropped")
    (dropped,) = outcome.of("dropped")
    assert "dead-lettered, then published again at 12:02:40 UTC by `ops`" in dropped["detail"]
    assert "never received by consumer group `scorer`" in dropped["detail"]


def test_a_watcher_alerts_a_replay_its_consumer_never_gets_though_the_dead_letter_was_told(
    store_layout: StoreLayout,
) -> None:
    # the dead letter was alerted; the operator replays it once the bug is fixed. A
    # replay lost on the way is a new fault to tell, not the dead letter again
    log = SpanLog()
    ours, parsed = _dead_lettered_at_the_scorer(log)
    log.write(store_layout)
    engine = Correlator(data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=5))
    told = [
        (a["kind"], a["workflow_id"])
        for a in engine.cold_pass(now=at(150))
        if a["workflow_id"] == "wf-dlq"
    ]
    _replayed(ours, parsed, at_s=160)
    log.write(store_layout)
    for now_s in (161, 170, 200):
        told += [(a["kind"], a["workflow_id"]) for a in engine.tick(now=at(now_s))]
    engine.close()

    assert told == [("dead_lettered", "wf-dlq"), ("dropped", "wf-dlq")]
