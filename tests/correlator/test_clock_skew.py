"""Hosts whose clocks disagree: a consumer's span stamped before the publish it
handles. Latencies are clamped (test_views.py); waits are judged from what can
have happened, so a clock running behind makes no finding of its own."""

from __future__ import annotations

import correlator
from correlator.queries import service_liveness
from store import StoreLayout
from tests.correlator.pipelines import (
    PARSED,
    SCORED,
    correlate,
    history,
    the_others_beat,
    up_to_parsed,
)
from tests.correlator.span_shapes import SpanLog, at


def test_a_handler_whose_clock_runs_behind_is_not_hung_before_its_deadline(
    store_layout: StoreLayout,
) -> None:
    # the scorer's host runs 10 s behind and sends no heartbeats (judged at once): its
    # receive is stamped 10 s before the publish it received
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    parsed = up_to_parsed(ours, "wf-behind", start=100)
    ours.receive(parsed, service="scorer", at_s=90.5)
    log.write(store_layout)

    running = correlate(store_layout, now_s=102)
    overdue = correlate(store_layout, now_s=110)

    assert running.kinds() == set()
    assert running.statuses["wf-behind"] == ("in_flight", f"{PARSED} → scorer", None)
    assert overdue.kinds() == {("hung", "wf-behind", PARSED)}


def test_the_step_after_a_host_whose_clock_runs_behind_is_not_slow(
    store_layout: StoreLayout,
) -> None:
    # the scorer's host runs 10 s behind: the score it publishes is stamped 10 s before
    # the notifier (on time) handles it, a tenth of a second later
    log = SpanLog()
    ours = history(log, runs=25)
    parsed = up_to_parsed(ours, "wf-behind", start=100)
    scored = ours.step(parsed, service="scorer", start=90.5, end=90.8, emits=SCORED)
    ours.process(scored, service="notifier", start=100.9, end=101)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=150)

    assert outcome.kinds() == set()
    assert outcome.statuses["wf-behind"][0] == "completed"


def test_a_message_from_a_host_whose_clock_runs_behind_is_not_dropped_before_its_deadline(
    store_layout: StoreLayout,
) -> None:
    # the scorer's host runs 40 s behind: the score it publishes is stamped 40 s before
    # the run began, and the notifier has had 1 s of its 5 s to take it
    log = SpanLog()
    ours = history(log, runs=25)
    parsed = up_to_parsed(ours, "wf-behind", start=100)
    ours.step(parsed, service="scorer", start=60.5, end=60.8, emits=SCORED)
    log.write(store_layout)

    waiting = correlate(store_layout, now_s=101.5)
    overdue = correlate(store_layout, now_s=110)

    assert waiting.kinds() == set()
    assert waiting.statuses["wf-behind"] == ("in_flight", f"{SCORED} → notifier", None)
    assert overdue.kinds() == {("dropped", "wf-behind", SCORED)}


def test_a_service_whose_clock_runs_behind_is_not_silent_while_it_beats(
    store_layout: StoreLayout,
) -> None:
    # the scorer beats every second, stamped by a clock 30 s behind: judged on its
    # stamps it was silent, and the message waiting on it stalled with consumer_down
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    the_others_beat(log, stop=206)
    log.heartbeats_every("scorer", start=1, stop=206, skew_s=-30)
    up_to_parsed(ours, "wf-x", start=198)
    log.write(store_layout)

    running = correlate(store_layout, now_s=200)
    overdue = correlate(store_layout, now_s=206)

    assert running.anomalies == []  # no telemetry_gap: service_silent
    assert running.statuses["wf-x"] == ("in_flight", f"{PARSED} → scorer", None)
    # past its deadline the message was dropped by a scorer that was up, not stalled on
    # a scorer down
    assert overdue.statuses["wf-x"] == ("stalled", f"{PARSED} → scorer", "dropped")
    assert [a["kind"] for a in overdue.anomalies] == ["dropped"]


def test_the_services_page_times_a_skewed_instance_by_the_collectors_clock(
    store_layout: StoreLayout,
) -> None:
    # its last beat and its restart, stamped by a clock an hour behind, read an hour
    # older than they were; last seen went by the collector's clock, restarted not
    log = SpanLog()
    for at_s, received in ((10, 5), (11, 6), (12, 1), (13, 2)):  # a restart at 12 s
        log.heartbeat("scorer", at_s=at_s, skew_s=-3600)
        log.heartbeats[-1]["received"] = received
    log.write(store_layout)

    con = correlator.connect(store_layout.root)
    try:
        (row,) = service_liveness(con).to_dict("records")
    finally:
        con.close()
    assert row["last_seen"] == at(13)
    assert row["restarted_at"] == at(12)
