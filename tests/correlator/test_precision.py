"""False alarms the demo's faults once raised: the moments when the spans seen so far
look like a fault but the workflow is only waiting, late, or already explained."""

from __future__ import annotations

from store import StoreLayout
from tests.correlator.pipelines import (
    PARSED,
    RECEIVED,
    SCORED,
    correlate,
    history,
    lost_while_the_scorer_was_down,
    the_others_beat,
    up_to_parsed,
)
from tests.correlator.span_shapes import OurSpans, Published, SpanLog


def test_event_published_by_a_handler_still_running_is_no_deviation(
    store_layout: StoreLayout,
) -> None:
    # a handler's process span is exported when it ends: what it published arrives
    # first (here the scorer finished its work but acks late, as a redelivered
    # duplicate does), so for a while the event's cause is not known yet
    log = SpanLog()
    ours = history(log, runs=12)
    parsed = up_to_parsed(ours, "wf-late-parent", start=100)
    ours.receive(parsed, service="scorer", at_s=100.5)
    still_open = log.new_id()
    scored = ours.publish(
        "scorer", SCORED, workflow_id="wf-late-parent", at_s=100.8,
        trace_id=parsed.trace_id, parent_span_id=still_open,
    )  # fmt: skip
    ours.process(scored, service="notifier", start=100.9, end=101)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=103)

    assert outcome.of("deviation") == []
    assert outcome.kinds() == set()


def test_event_whose_cause_arrived_and_is_out_of_model_is_still_a_deviation(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log, runs=12)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-odd", at_s=100)
    ours.publish(
        "intake", SCORED, workflow_id="wf-odd", at_s=100.2, trace_id=first.trace_id
    )  # a second first event, with no parent: out of model
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=103)

    assert ("deviation", "wf-odd", SCORED) in outcome.kinds()


def test_hung_handler_stopped_with_an_error_past_its_deadline_is_hung_not_failed(
    store_layout: StoreLayout,
) -> None:
    # the handler hung; 40 s later its service stopped and cancelled it, which ends
    # the process span in error: the step hung, it did not fail
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-hang", start=100)
    ours.process(
        parsed, service="scorer", start=100.5, end=140.5,
        error="cancelled: the agent stopped mid-step", settle=None,
    )  # fmt: skip
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=150)

    assert outcome.kinds() == {("hung", "wf-hang", PARSED)}
    assert "ran past its deadline before it was stopped" in outcome.of("hung")[0]["detail"]
    assert outcome.statuses["wf-hang"][0::2] == ("stalled", "hung")


def test_handler_that_raised_within_its_deadline_is_still_failed(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-fail", start=100)
    ours.process(parsed, service="scorer", start=100.5, end=101, error="ValueError: bad cv")
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=150)

    assert outcome.kinds() == {("failed", "wf-fail", PARSED)}


def test_attempts_nakd_for_a_retry_are_not_failed_while_the_retry_may_still_come(
    store_layout: StoreLayout,
) -> None:
    # a rate-limited LLM call, retried by the Agent's own backoff (1 s, 5 s, 30 s):
    # each failed attempt is nak'ed, so JetStream will deliver the message again
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-429", start=100)
    for start in (100.5, 102.0, 107.5):
        ours.process(parsed, service="scorer", start=start, end=start + 0.5,
                     error="RateLimitError: 429", settle="nak")  # fmt: skip
    log.write(store_layout)

    during_backoff = correlate(store_layout, now_s=120, min_deadline_s=30)
    assert during_backoff.kinds() == set()
    assert during_backoff.statuses["wf-429"][0] == "in_flight"

    # no redelivery within the step's deadline (30 s) and the retry grace after it
    never_retried = correlate(store_layout, now_s=150, min_deadline_s=30)
    assert never_retried.kinds() == {("failed", "wf-429", PARSED)}


def _nakd_for_30_s(store_layout: StoreLayout) -> tuple[SpanLog, OurSpans, Published]:
    """wf-backoff: its scorer's attempt failed at 101 s and was nak'ed for 30 s."""
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-backoff", start=100)
    ours.process(parsed, service="scorer", start=100.5, end=101,
                 error="RateLimitError: 429", settle="nak", nak_delay_s=30)  # fmt: skip
    log.write(store_layout)
    return log, ours, parsed


def test_attempt_nakd_with_a_backoff_past_its_deadline_is_not_failed_before_the_retry_is_due(
    store_layout: StoreLayout,
) -> None:
    # the Agent's last backoff (30 s) is far past the step's deadline (5 s): the nak
    # says when the redelivery is due, so the attempt waits for it, and the retry
    # that comes completes the run with nothing to report
    log, ours, parsed = _nakd_for_30_s(store_layout)

    past_the_deadline = correlate(store_layout, now_s=113)  # nak + 12 s
    assert past_the_deadline.kinds() == set()
    assert past_the_deadline.statuses["wf-backoff"][0] == "in_flight"

    scored = ours.step(parsed, service="scorer", start=131.2, end=131.5, emits=SCORED)
    ours.process(scored, service="notifier", start=131.6, end=131.7)
    log.write(store_layout)

    retried = correlate(store_layout, now_s=140)
    assert retried.anomalies == []
    assert retried.statuses["wf-backoff"][0] == "completed"


def test_attempt_nakd_with_a_backoff_is_failed_once_its_retry_is_overdue(
    store_layout: StoreLayout,
) -> None:
    _nakd_for_30_s(store_layout)

    # the redelivery was due at 131 s; none came within the retry grace (5 s) after it
    assert correlate(store_layout, now_s=135).kinds() == set()
    overdue = correlate(store_layout, now_s=137)
    assert overdue.kinds() == {("failed", "wf-backoff", PARSED)}


def test_a_publish_the_bus_refused_in_an_attempt_retried_since_is_not_dropped(
    store_layout: StoreLayout,
) -> None:
    # the parser's emit times out (a stream leader election): its publish span ends in
    # error, the handler raises and naks, and the retry publishes anew and completes
    log = SpanLog()
    ours = history(log, runs=10)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-retried", at_s=100)
    attempt = ours.process(first, service="parser", start=100.1, end=100.5,
                           error="PublishError: TimeoutError", settle="nak")  # fmt: skip
    refused = ours.publish("parser", PARSED, workflow_id="wf-retried", at_s=100.2,
                           trace_id=first.trace_id, parent_span_id=attempt)  # fmt: skip
    for row in log.rows:
        if row["span_id"] == refused.span_id:
            row["status_code"], row["status_message"] = "error", "nats: timeout"
    parsed = ours.step(first, service="parser", start=101.5, end=101.8, emits=PARSED)
    scored = ours.step(parsed, service="scorer", start=101.9, end=102.2, emits=SCORED)
    ours.process(scored, service="notifier", start=102.3, end=102.4)
    # the same refusal in an attempt that carried on: that message is still owed
    first = ours.publish("intake", RECEIVED, workflow_id="wf-swallowed", at_s=110)
    attempt = ours.process(first, service="parser", start=110.1, end=110.5)
    swallowed = ours.publish("parser", PARSED, workflow_id="wf-swallowed", at_s=110.2,
                             trace_id=first.trace_id, parent_span_id=attempt)  # fmt: skip
    for row in log.rows:
        if row["span_id"] == swallowed.span_id:
            row["status_code"], row["status_message"] = "error", "nats: timeout"
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=200, min_deadline_s=30)

    assert outcome.kinds() == {("dropped", "wf-swallowed", PARSED)}
    assert outcome.statuses["wf-retried"][0] == "completed"


def test_backlog_of_a_consumer_back_from_an_outage_is_stalled_not_dropped(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    the_others_beat(log)
    log.heartbeats_every("scorer", start=1, stop=95)  # stopped at 95 s
    log.heartbeats_every("scorer", start=110, stop=200)  # back at 110 s
    up_to_parsed(ours, "wf-backlog", start=100)  # waits in the scorer's backlog
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=112)

    assert outcome.kinds() == {("stalled", "wf-backlog", PARSED)}
    (stalled,) = [a for a in outcome.of("stalled") if a["workflow_id"] == "wf-backlog"]
    assert stalled["root_cause"] == "consumer_down"
    assert "still working off its backlog" in stalled["detail"]


def test_messages_queued_behind_a_busy_consumer_are_stalled_on_its_backlog_not_dropped(
    store_layout: StoreLayout,
) -> None:
    # an LLM scorer takes ~10 s a message, one at a time; a burst of 10 queues up (a
    # long history, so that the burst's own latencies do not set the step's deadline)
    log = SpanLog()
    ours = history(log, runs=600, heartbeats_until=800)
    for k in range(10):
        first = ours.publish("intake", RECEIVED, workflow_id=f"wf-b{k}", at_s=700)
        parsed = ours.step(first, service="parser", start=700.1, end=700.2, emits=PARSED)
        start = 700.5 + 10 * k
        if start + 10 <= 760:
            scored = ours.step(parsed, service="scorer", start=start, end=start + 10, emits=SCORED)
            ours.process(scored, service="notifier", start=start + 10.1, end=start + 10.2)
    for t in range(700, 761, 10):  # what the collector samples of the scorer's durable
        log.lag_sample("scorer--recruit_ALL", at_s=t, backlog=9 - (t - 700) // 10,
                       subject="recruit.>")  # fmt: skip
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=760, min_deadline_s=30)

    queued = {a["workflow_id"] for a in outcome.of("stalled") if a["root_cause"] == "backlog"}
    assert queued == {"wf-b5", "wf-b6", "wf-b7", "wf-b8", "wf-b9"}  # past the 30 s deadline
    assert outcome.of("dropped") == []
    (last,) = [a for a in outcome.of("stalled") if a["workflow_id"] == "wf-b9"]
    assert (
        "waits in the backlog of consumer group `scorer`: JetStream held 3 messages"
        in (last["detail"])
    )
    assert outcome.statuses["wf-b9"] == ("stalled", f"{PARSED} → scorer", "backlog")


def test_a_message_lost_before_a_backlog_built_up_is_still_dropped(
    store_layout: StoreLayout,
) -> None:
    # lost while the scorer's durable held nothing; a burst queues up much later
    log = SpanLog()
    ours = history(log, runs=600, heartbeats_until=800)
    up_to_parsed(ours, "wf-lost", start=700)
    for t in range(700, 761, 10):
        log.lag_sample("scorer--recruit_cv_parsed", at_s=t, backlog=0 if t < 750 else 5,
                       subject=PARSED)  # fmt: skip
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=760, min_deadline_s=30)

    assert outcome.kinds() == {("dropped", "wf-lost", PARSED)}


def test_message_a_consumer_never_got_long_after_its_return_is_dropped(
    store_layout: StoreLayout,
) -> None:
    lost_while_the_scorer_was_down(store_layout)

    outcome = correlate(store_layout, now_s=130)  # back for 20 s, deadline 5 s

    assert ("dropped", "wf-lost", PARSED) in outcome.kinds()


def test_a_wait_seen_otherwise_as_time_passes_stays_one_anomaly(
    store_layout: StoreLayout,
) -> None:
    # the scorer is down when the message comes (stalled: consumer down), then back,
    # and the message never reaches it (dropped): one fault, one anomaly, one alert;
    # the workflow's status says how it stands now
    lost_while_the_scorer_was_down(store_layout)

    during = correlate(store_layout, now_s=108)
    after = correlate(store_layout, now_s=130)

    assert during.kinds() == {("stalled", "wf-lost", PARSED)}
    ((before,), (now,)) = (
        [a for a in outcome.anomalies if a["workflow_id"] == "wf-lost"]
        for outcome in (during, after)
    )
    assert now["anomaly_id"] == before["anomaly_id"] and now["resolved_at"] is None
    assert (now["kind"], now["root_cause"]) == ("stalled", "consumer_down")  # as first told
    assert after.statuses["wf-lost"] == ("stalled", f"{PARSED} → scorer", "dropped")  # now
