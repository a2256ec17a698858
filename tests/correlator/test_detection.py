"""Each anomaly kind of DESIGN.md ("What the correlator detects"), one fault per
test with known ground truth, on spans shaped like choreoscope's instrumentation.
Healthy workflows beside the fault are never flagged."""

from __future__ import annotations

from collections.abc import Callable

from correlator.engine import Correlator
from correlator.model import model_as_choreography
from correlator.thresholds import Thresholds
from instrumentation.wire import durable_name
from store import StoreLayout
from tests.correlator.pipelines import (
    PARSED,
    RECEIVED,
    SCORED,
    SERVICES,
    correlate,
    healthy_run,
    history,
    the_others_beat,
    up_to_parsed,
)
from tests.correlator.span_shapes import OurSpans, Published, SpanLog, at


def test_healthy_workflows_are_completed_and_never_flagged(store_layout: StoreLayout) -> None:
    log = SpanLog()
    history(log, runs=10)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=120)

    assert outcome.anomalies == []
    assert {s for s, _, _ in outcome.statuses.values()} == {"completed"}
    assert len(outcome.statuses) == 10


def test_workflow_within_its_deadline_is_in_flight_not_stalled(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log)
    up_to_parsed(ours, "wf-new", start=100)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=102)  # 1.6 s after the publish, deadline 5 s

    assert outcome.kinds() == set()
    assert outcome.statuses["wf-new"] == ("in_flight", f"{PARSED} → scorer", None)


def test_message_published_to_nobody_is_reported_dropped(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log)
    up_to_parsed(ours, "wf-drop", start=100)  # scorer is alive, but never got it
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=160)

    assert outcome.kinds() == {("dropped", "wf-drop", PARSED)}
    (dropped,) = outcome.of("dropped")
    assert dropped["service"] == "scorer" and dropped["consumer"] == "scorer"
    assert dropped["detail"].startswith(f"stalled at `scorer`: `{PARSED}` msg ")
    # stored text names the clock time, so it does not read stale later
    published = at(100).strftime("%H:%M:%S")
    assert f"published at {published} UTC by `parser`, never received" in dropped["detail"]
    assert outcome.statuses["wf-drop"] == ("stalled", f"{PARSED} → scorer", "dropped")


def test_handler_that_never_finishes_is_reported_hung(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-hang", start=100)
    ours.receive(parsed, service="scorer", at_s=100.5)  # arrived; the handler never ended
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=130)

    assert outcome.kinds() == {("hung", "wf-hang", PARSED)}
    assert "has not finished" in outcome.of("hung")[0]["detail"]
    assert outcome.statuses["wf-hang"][0::2] == ("stalled", "hung")


def test_message_past_max_deliveries_is_dead_lettered_not_failed(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-dlq", start=100)
    for attempt in range(3):
        t = 101 + attempt
        ours.process(parsed, service="scorer", start=t, end=t + 0.1, error="ValueError: bad cv",
                     settle="nak")  # fmt: skip
    log.bus_event("max_deliveries", parsed, at_s=104, consumer="scorer")
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=130)

    assert outcome.kinds() == {("dead_lettered", "wf-dlq", PARSED)}
    detail = outcome.of("dead_lettered")[0]["detail"]
    assert "past its max deliveries" in detail and "after 3 failed attempts" in detail
    assert "ValueError: bad cv" in detail
    assert outcome.statuses["wf-dlq"][0::2] == ("stalled", "dead_lettered")


def test_message_terminated_by_a_handler_that_returned_is_dead_lettered(
    store_layout: StoreLayout,
) -> None:
    # another instrumentation: the handler calls term() and returns, so its process
    # span ends without error and no settle span says so; only the bus's advisory does
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-t", start=100)
    ours.process(parsed, service="scorer", start=101, end=101.1, settle=None)
    log.bus_event("terminated", parsed, at_s=101.2, consumer=durable_name("scorer", PARSED))
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=130)

    assert outcome.kinds() == {("dead_lettered", "wf-t", PARSED)}
    assert outcome.statuses["wf-t"] == ("stalled", f"{PARSED} → scorer", "dead_lettered")


def test_a_terminated_attempt_replayed_and_processed_is_done(store_layout: StoreLayout) -> None:
    # the advisory is about the attempt just before it: the run goes on once an
    # operator replays the message and the scorer processes it
    log = SpanLog()
    ours = history(log, heartbeats_until=400)
    parsed = up_to_parsed(ours, "wf-t", start=100)
    ours.process(parsed, service="scorer", start=101, end=101.1, settle=None)
    log.bus_event("terminated", parsed, at_s=101.2, consumer=durable_name("scorer", PARSED))
    again = ours.publish("ops", PARSED, workflow_id="wf-t", at_s=160, message_id=parsed.message_id)
    scored = ours.step(again, service="scorer", start=160.5, end=160.8, emits=SCORED)
    ours.process(scored, service="notifier", start=161, end=161.2)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=190)

    assert outcome.kinds() == set()
    assert outcome.statuses["wf-t"] == ("completed", None, None)


def _fan_out(log: SpanLog, *, notifier: str = "notifier") -> Callable[[str, float], Published]:
    """History where SCORED goes to two groups, ``notifier`` and archiver; returns
    a function that runs a workflow up to SCORED."""
    ours = OurSpans(log)

    def run(workflow: str, start: float) -> Published:
        first = ours.publish("intake", RECEIVED, workflow_id=workflow, at_s=start)
        parsed = ours.step(first, service="parser", start=start + 0.1, end=start + 0.4,
                           emits=PARSED)  # fmt: skip
        return ours.step(parsed, service="scorer", start=start + 0.5, end=start + 0.8,
                         emits=SCORED)  # fmt: skip

    for i in range(8):
        scored = run(f"wf-{i}", float(i))
        ours.process(scored, service=notifier, start=i + 0.9, end=i + 1.0)
        ours.process(scored, service="archiver", start=i + 0.9, end=i + 1.2)
    for service in ("intake", "parser", "scorer", notifier, "archiver"):
        log.heartbeats_every(service, start=0, stop=200)
    return run


def test_one_groups_dead_letter_leaves_the_other_groups_of_a_fan_out_waiting(
    store_layout: StoreLayout,
) -> None:
    # notifier gives up on SCORED; archiver's queue has not reached it yet (its
    # deadline is 5 s)
    log = SpanLog()
    scored = _fan_out(log)("wf-dlq", 100)
    for t in (100.9, 101.2):
        OurSpans(log).process(scored, service="notifier", start=t, end=t + 0.1, error="boom",
                              settle=None)  # fmt: skip
    # the advisory names the Agent's durable, not the group
    log.bus_event("max_deliveries", scored, at_s=101.4, consumer=durable_name("notifier", SCORED))
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=102)

    assert outcome.kinds() == {("dead_lettered", "wf-dlq", SCORED)}
    assert {a["consumer"] for a in outcome.anomalies} == {"notifier"}
    assert outcome.statuses["wf-dlq"] == ("stalled", f"{SCORED} → notifier", "dead_lettered")
    # archiver never got it: past its deadline that is a drop, not notifier's dead letter
    late = correlate(store_layout, now_s=110)
    assert ("dropped", "wf-dlq", SCORED) in late.kinds()
    assert {a["consumer"] for a in late.of("dropped")} == {"archiver"}


def test_a_dead_letter_of_a_group_that_processed_the_message_leaves_the_others_waiting(
    store_layout: StoreLayout,
) -> None:
    # notifier.v2 processed SCORED, slowly: JetStream had already redelivered it to its
    # limit and says so, naming its durable (the dot made '_'); archiver has time
    log = SpanLog()
    scored = _fan_out(log, notifier="notifier.v2")("wf-slow-ack", 100)
    OurSpans(log).process(scored, service="notifier.v2", start=100.9, end=101.3)
    log.bus_event("max_deliveries", scored, at_s=101.4,
                  consumer=durable_name("notifier.v2", SCORED))  # fmt: skip
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=102)

    assert outcome.kinds() == set()
    assert outcome.statuses["wf-slow-ack"] == ("in_flight", f"{SCORED} → archiver", None)


def test_message_republished_to_dead_letter_subject_is_dead_lettered(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-dlq", start=100)
    span = ours.process(parsed, service="scorer", start=101, end=101.2, error="boom", settle="term")
    ours.publish(
        "scorer", f"dlq.{PARSED}", workflow_id="wf-dlq", at_s=101.1,
        trace_id=parsed.trace_id, parent_span_id=span,
    )  # fmt: skip
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=103)  # no deadline needs to pass

    assert outcome.kinds() == {("dead_lettered", "wf-dlq", PARSED)}


def _an_auditor_deployed_12_minutes_later(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log, runs=10, heartbeats_until=900)  # wf-0 … wf-9, before the auditor
    for i in range(10, 20):  # an auditor group is deployed on PARSED 12 minutes later
        start = 700.0 + i
        first = ours.publish("intake", RECEIVED, workflow_id=f"wf-{i}", at_s=start)
        parsed = ours.step(first, service="parser", start=start + 0.1, end=start + 0.4,
                           emits=PARSED)  # fmt: skip
        ours.process(parsed, service="auditor", start=start + 0.45, end=start + 0.5)
        scored = ours.step(parsed, service="scorer", start=start + 0.5, end=start + 0.8,
                           emits=SCORED)  # fmt: skip
        ours.process(scored, service="notifier", start=start + 0.9, end=start + 1.0)
    up_to_parsed(ours, "wf-late", start=750)  # published since: the auditor never got it
    log.write(store_layout)


def test_a_consumer_group_deployed_later_is_owed_only_what_was_published_since(
    store_layout: StoreLayout,
) -> None:
    _an_auditor_deployed_12_minutes_later(store_layout)

    outcome = correlate(store_layout, now_s=800)

    # the runs that ended before it existed owe it nothing; the one since does
    assert {(k, wf) for k, wf, _ in outcome.kinds()} == {("dropped", "wf-late")}
    assert {a["consumer"] for a in outcome.of("dropped")} == {"auditor", "scorer"}
    assert {outcome.statuses[f"wf-{i}"][0] for i in range(20)} == {"completed"}

    # the same once the learned model is written out and declared (model --write)
    engine = Correlator(data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=5))
    engine.cold_pass(now=at(800), hold=False)
    written = model_as_choreography(engine.model, thresholds=engine.thresholds)
    engine.close()
    declared = correlate(store_layout, now_s=800, choreography=written)
    assert {(k, wf) for k, wf, _ in declared.kinds()} == {("dropped", "wf-late")}


def test_a_group_that_came_within_present_from_start_s_is_owed_every_message(
    store_layout: StoreLayout,
) -> None:
    _an_auditor_deployed_12_minutes_later(store_layout)

    # 12 minutes is "from the start" once the window is 15: the auditor owes the
    # runs before its first message too, and never got them
    outcome = correlate(store_layout, now_s=800, present_from_start_s=900)

    dropped = {(a["workflow_id"], a["consumer"]) for a in outcome.of("dropped")}
    assert dropped == {(f"wf-{i}", "auditor") for i in range(10)} | {
        ("wf-late", "auditor"),
        ("wf-late", "scorer"),
    }


def test_a_group_deployed_later_still_owes_nothing_once_retention_drops_older_runs(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = OurSpans(log)
    for i in range(10):  # an hour the retention will drop
        healthy_run(ours, f"wf-{i}", start=float(i))
    for service in SERVICES:
        log.heartbeats_every(service, start=0, stop=900, interval_s=10)
    log.write(store_layout)
    oldest = [p for p in (store_layout.root / "spans").rglob("*.parquet") if p.name[0] != "_"]
    for i in range(10, 20):  # runs still kept, before the auditor existed
        healthy_run(ours, f"wf-{i}", start=400.0 + 10 * i)
    for i in range(20, 30):  # an auditor group deployed on PARSED at t=700
        first = ours.publish("intake", RECEIVED, workflow_id=f"wf-{i}", at_s=680.0 + i)
        parsed = ours.step(first, service="parser", start=680.1 + i, end=680.4 + i,
                           emits=PARSED)  # fmt: skip
        ours.process(parsed, service="auditor", start=680.45 + i, end=680.5 + i)
        scored = ours.step(parsed, service="scorer", start=680.5 + i, end=680.8 + i,
                           emits=SCORED)  # fmt: skip
        ours.process(scored, service="notifier", start=680.9 + i, end=681.0 + i)
    log.write(store_layout)
    assert correlate(store_layout, now_s=800).kinds() == set()

    # retention drops the first segment: the store now begins at t=500, within 10
    # minutes of the auditor's first message, as if it had always been there
    for segment in oldest:
        segment.unlink()

    assert correlate(store_layout, now_s=800).kinds() == set()


def test_a_consumer_group_there_from_the_start_is_owed_the_first_message_too(
    store_layout: StoreLayout,
) -> None:
    # the store's very first run lost its message to the scorer: the scorer's first
    # message came a second later, so it was there all along
    log = SpanLog()
    ours = OurSpans(log)
    up_to_parsed(ours, "wf-first", start=0)
    for i in range(1, 10):
        healthy_run(ours, f"wf-{i}", start=float(i))
    for service in ("intake", "parser", "scorer", "notifier"):
        log.heartbeats_every(service, start=0, stop=200)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=100)

    assert outcome.kinds() == {("dropped", "wf-first", PARSED)}


def test_handler_error_without_retry_is_failed(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-fail", start=100)
    ours.process(parsed, service="scorer", start=101, end=101.5, error="KeyError: 'skills'")
    log.write(store_layout)

    early = correlate(store_layout, now_s=103, retry_grace_s=5)
    assert early.kinds() == set()  # a retry may still come

    outcome = correlate(store_layout, now_s=110, retry_grace_s=5)
    assert outcome.kinds() == {("failed", "wf-fail", PARSED)}
    assert "KeyError: 'skills'" in outcome.of("failed")[0]["detail"]
    assert outcome.statuses["wf-fail"][0] == "failed"


def test_error_then_successful_retry_is_not_failed(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-retry", start=100)
    ours.process(parsed, service="scorer", start=101, end=101.5, error="timeout", settle="nak")
    ours.process(parsed, service="scorer", start=102, end=102.5)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=150)

    assert outcome.kinds() == set()
    assert outcome.statuses["wf-retry"][0] == "completed"


def test_redelivered_message_processed_twice_is_a_duplicate(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-dup", at_s=100)
    parsed = ours.step(first, service="parser", start=100.1, end=100.4, emits=PARSED)
    scored = ours.step(parsed, service="scorer", start=100.5, end=100.8, emits=SCORED)
    ours.process(parsed, service="scorer", start=131, end=131.3)  # redelivered after ack_wait
    ours.process(scored, service="notifier", start=100.9, end=101)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=150)

    assert outcome.kinds() == {("duplicate", "wf-dup", PARSED)}
    assert "processed 2 times by consumer group `scorer`" in outcome.of("duplicate")[0]["detail"]


def test_consumer_whose_heartbeats_stopped_is_down_not_dropping(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    the_others_beat(log)
    log.heartbeats_every("scorer", start=1, stop=95)  # killed at 95 s
    up_to_parsed(ours, "wf-down", start=100)
    # JetStream, as the collector samples it: the scorers' durable has a backlog
    log.lag_sample("scorer--recruit_cv_parsed", at_s=90, backlog=0, subject=PARSED)
    log.lag_sample("scorer--recruit_cv_parsed", at_s=125, backlog=4, subject=PARSED)
    log.lag_sample("scorer--recruit_STAR_parsed", at_s=125, backlog=2, subject="recruit.*.parsed")
    log.lag_sample("archiver--recruit_cv_parsed", at_s=125, backlog=9, subject=PARSED)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=130)

    assert outcome.kinds() == {("stalled", "wf-down", PARSED)}
    (stalled,) = [a for a in outcome.of("stalled") if a["workflow_id"] == "wf-down"]
    assert stalled["root_cause"] == "consumer_down"
    assert (
        "which is down (no heartbeat since 12:01:35 UTC); JetStream holds 6 messages for it"
        in stalled["detail"]
    )
    assert outcome.statuses["wf-down"] == ("stalled", f"{PARSED} → scorer", "consumer_down")
    silent = [a for a in outcome.of("telemetry_gap") if a["workflow_id"] is None]
    assert [(a["service"], a["root_cause"]) for a in silent] == [("scorer", "service_silent")]


def test_a_message_its_consumer_never_got_while_up_stays_dropped_once_it_goes_down(
    store_layout: StoreLayout,
) -> None:
    # judged after the services stopped (`correlate --once` after a demo, or a watcher
    # once the consumer crashed an hour later), a message the consumer never got while
    # it ran was blamed on that later outage, though it will never come
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    for service in ("intake", "parser", "scorer", "notifier"):
        log.heartbeats_every(service, start=1, stop=150)
    up_to_parsed(ours, "wf-lost", start=100)  # its deadline passed at 105 s, scorer up
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=300)

    assert outcome.kinds() == {("dropped", "wf-lost", PARSED)}
    assert outcome.statuses["wf-lost"] == ("stalled", f"{PARSED} → scorer", "dropped")


def test_a_service_stopped_on_purpose_is_no_telemetry_gap_but_its_messages_wait_on_it(
    store_layout: StoreLayout,
) -> None:
    # its last beat said it was stopping: it was reported "went silent", as if its
    # telemetry were lost
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    the_others_beat(log)
    log.heartbeats_every("scorer", start=1, stop=95)
    log.heartbeat("scorer", at_s=95.5, stopped=True)
    up_to_parsed(ours, "wf-waits", start=100)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=130)

    assert outcome.kinds() == {("stalled", "wf-waits", PARSED)}
    (stalled,) = outcome.of("stalled")
    assert stalled["root_cause"] == "consumer_down"
    assert "which stopped at 12:01:35 UTC (its last heartbeat said so)" in stalled["detail"]
    assert [a for a in outcome.of("telemetry_gap") if a["workflow_id"] is None] == []


def test_consumer_killed_while_handling_is_down_not_hung(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    the_others_beat(log)
    log.heartbeats_every("scorer", start=1, stop=101)
    parsed = up_to_parsed(ours, "wf-kill", start=100)
    ours.receive(parsed, service="scorer", at_s=100.5)  # then the process was killed
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=130)

    assert outcome.kinds() == {("stalled", "wf-kill", PARSED)}
    assert outcome.statuses["wf-kill"][2] == "consumer_down"
    # stored, so it names clock times, not "for 29 s", which is stale a minute later
    (stalled,) = outcome.of("stalled")
    assert (
        "was received at 12:01:40 UTC, and the instance holding it (`scorer-1`) is down "
        "(no heartbeat since 12:01:41 UTC)" in stalled["detail"]
    )


def test_a_handler_whose_instance_restarted_under_its_id_is_stalled_not_hung(
    store_layout: StoreLayout,
) -> None:
    # killed mid-message (out of memory) and restarted in the same pod within a
    # heartbeat interval: never silent, but its counters begin again
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    the_others_beat(log, start=0, interval_s=10)
    for t in range(0, 101, 10):
        log.heartbeat("scorer", at_s=t, interval_s=10)
        log.heartbeats[-1].update(received=t // 10 + 1, processed=t // 10 + 1)
    for t in range(112, 201, 10):
        log.heartbeat("scorer", at_s=t, interval_s=10)  # counters back at zero
    parsed = up_to_parsed(ours, "wf-oom", start=100)
    ours.receive(parsed, service="scorer", at_s=100.5)  # then the process died
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=150, min_deadline_s=30)

    assert outcome.kinds() == {("stalled", "wf-oom", PARSED)}
    (stalled,) = outcome.of("stalled")
    assert stalled["root_cause"] == "consumer_down"
    assert (
        "(`scorer-1`) restarted since, at 12:01:52 UTC: the handler died with it"
        in (stalled["detail"])
    )


def test_two_processes_sharing_an_instance_id_are_no_restarts(
    store_layout: StoreLayout,
) -> None:
    # a pod-wide service.instance.id shared by two worker processes: their beats
    # interleave, one's counters below the other's; a handler that hangs is hung
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    the_others_beat(log, start=0)
    for t in range(0, 201):
        log.heartbeat("scorer", at_s=t + (0.5 if t % 2 else 0.0))
        worker = 100 if t % 2 else 10  # the busier worker's totals, then the other's
        log.heartbeats[-1].update(received=worker + t, processed=worker + t)
    parsed = up_to_parsed(ours, "wf-hang", start=100)
    ours.receive(parsed, service="scorer", at_s=100.5)  # and its handler never ends
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=150, min_deadline_s=30)

    assert outcome.kinds() == {("hung", "wf-hang", PARSED)}


def _handling_on_a_slow_heartbeat(log: SpanLog, *, scorer_beats_until: float) -> None:
    """The scorer (heartbeat every 10 s) receives wf-slowbeat's message at 100.5 s and
    never finishes it (deadline 5 s)."""
    ours = history(log, heartbeats_until=None)
    the_others_beat(log)
    log.heartbeats_every("scorer", start=1, stop=scorer_beats_until, interval_s=10.0)
    parsed = up_to_parsed(ours, "wf-slowbeat", start=100)
    ours.receive(parsed, service="scorer", at_s=100.5)


def test_handler_is_hung_once_its_instance_is_seen_alive_past_the_deadline(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    _handling_on_a_slow_heartbeat(log, scorer_beats_until=200)
    log.write(store_layout)

    # the deadline passed at 105.5 s; the scorer's next beat comes at 111 s
    assert correlate(store_layout, now_s=110).kinds() == set()
    assert correlate(store_layout, now_s=112).kinds() == {("hung", "wf-slowbeat", PARSED)}


def test_handler_whose_instance_died_is_not_called_hung_before_it_is_called_down(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    _handling_on_a_slow_heartbeat(log, scorer_beats_until=101)  # killed after its beat at 101 s
    log.write(store_layout)

    # past the deadline, but the scorer is not yet silent (3 missed beats: 131 s)
    early = correlate(store_layout, now_s=120)
    assert early.kinds() == set()
    assert early.statuses["wf-slowbeat"][0] == "in_flight"
    late = correlate(store_layout, now_s=140)
    assert late.kinds() == {("stalled", "wf-slowbeat", PARSED)}
    assert late.statuses["wf-slowbeat"][2] == "consumer_down"


def test_consumer_span_whose_producer_span_never_came_is_an_orphan(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-orphan", start=100)
    log.rows = [r for r in log.rows if r["span_id"] != parsed.span_id]  # the publish span is lost
    ours.process(parsed, service="scorer", start=100.5, end=100.8)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=130, orphan_grace_s=10)

    assert outcome.kinds() == {("orphan", "wf-orphan", PARSED)}
    assert "publish span never arrived" in outcome.of("orphan")[0]["detail"]


def test_a_consumer_span_exported_late_waits_its_grace_from_when_the_store_got_it(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-late-export", start=100)
    log.rows = [r for r in log.rows if r["span_id"] != parsed.span_id]  # not arrived yet
    ours.process(parsed, service="scorer", start=100.5, end=100.8)
    for row in log.rows:  # the scorer's exporter sent its spans 30 s late
        if row["service_name"] == "scorer" and row["start_time"] >= at(100):
            row["received_at"] = at(130.8)
    log.write(store_layout)

    # 31 s after the consumer span began, 0.2 s after the store got it: its
    # producer's span may be in the next batch
    outcome = correlate(store_layout, now_s=131, orphan_grace_s=10)
    later = correlate(store_layout, now_s=141, orphan_grace_s=10)

    assert ("orphan", "wf-late-export", PARSED) not in outcome.kinds()
    assert ("orphan", "wf-late-export", PARSED) in later.kinds()


def test_lost_producer_spans_are_a_telemetry_gap_not_a_broken_workflow(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    for service in ("intake", "scorer", "notifier"):
        log.heartbeats_every(service, start=1, stop=200)
    log.heartbeats_every("parser", start=1, stop=99)
    log.heartbeats_every("parser", start=100, stop=200, spans_dropped=7)
    parsed = up_to_parsed(ours, "wf-gap", start=100)
    log.rows = [r for r in log.rows if r["span_id"] != parsed.span_id]
    ours.process(parsed, service="scorer", start=100.5, end=100.8)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=130, orphan_grace_s=10)

    assert outcome.kinds() == {("telemetry_gap", "wf-gap", PARSED)}
    detail = outcome.of("telemetry_gap")
    per_workflow = next(a for a in detail if a["workflow_id"] == "wf-gap")
    assert per_workflow["service"] == "parser"
    assert "reported dropping 7 spans" in per_workflow["detail"]
    service_level = [a for a in detail if a["workflow_id"] is None]
    assert [(a["service"], a["root_cause"]) for a in service_level] == [("parser", "spans_dropped")]


def _orphan_while_the_parser_drops_from(layout: StoreLayout, *, drops_from: float) -> None:
    """wf-orphan's publish span, made at 100 s, never arrives; the parser's exporter
    reports 7 dropped spans from ``drops_from`` on (a running total)."""
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    for service in ("intake", "scorer", "notifier"):
        log.heartbeats_every(service, start=1, stop=200)
    log.heartbeats_every("parser", start=1, stop=drops_from - 1)
    log.heartbeats_every("parser", start=drops_from, stop=200, spans_dropped=7)
    parsed = up_to_parsed(ours, "wf-orphan", start=100)
    log.rows = [r for r in log.rows if r["span_id"] != parsed.span_id]
    ours.process(parsed, service="scorer", start=100.5, end=100.8)
    log.write(layout)


def test_spans_a_producer_dropped_long_before_do_not_explain_away_an_orphan(
    store_layout: StoreLayout,
) -> None:
    # a burst of drops at startup: the running total says 7 ever since, and a publish
    # span missing at 100 s is not one of them
    _orphan_while_the_parser_drops_from(store_layout, drops_from=3)

    outcome = correlate(store_layout, now_s=130, orphan_grace_s=10)

    assert outcome.kinds() == {("orphan", "wf-orphan", PARSED)}


def test_spans_a_producer_dropped_long_after_do_not_turn_an_orphan_into_a_gap(
    store_layout: StoreLayout,
) -> None:
    # the orphan at 100 s was told; drops came only at 171 s: a later pass must not
    # call it a telemetry gap
    _orphan_while_the_parser_drops_from(store_layout, drops_from=171)

    outcome = correlate(store_layout, now_s=190, orphan_grace_s=10)

    assert outcome.kinds() == {("orphan", "wf-orphan", PARSED)}


def test_event_the_learned_choreography_never_had_is_a_deviation(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log, runs=12)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-odd", at_s=100)
    parsed = ours.step(first, service="parser", start=100.1, end=100.4, emits=PARSED)
    odd = ours.step(parsed, service="scorer", start=100.5, end=100.8, emits="recruit.offer.sent")
    log.write(store_layout)
    del odd

    outcome = correlate(store_layout, now_s=150)

    assert outcome.kinds() == {("deviation", "wf-odd", "recruit.offer.sent")}
    assert f"after `{PARSED}`" in outcome.of("deviation")[0]["detail"]


def test_too_few_runs_to_learn_from_judge_no_deviation(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log, runs=2)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-odd", at_s=100)
    parsed = ours.step(first, service="parser", start=100.1, end=100.4, emits=PARSED)
    ours.step(parsed, service="scorer", start=100.5, end=100.8, emits="recruit.offer.sent")
    log.write(store_layout)

    assert correlate(store_layout, now_s=150, min_model_workflows=5).of("deviation") == []


def test_step_far_slower_than_usual_is_slow(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log, runs=25)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-slow", at_s=100)
    parsed = ours.step(first, service="parser", start=100.1, end=100.4, emits=PARSED)
    scored = ours.step(parsed, service="scorer", start=100.5, end=104.5, emits=SCORED)
    ours.process(scored, service="notifier", start=104.6, end=104.7)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=150, slow_min_samples=20)

    assert outcome.kinds() == {("slow", "wf-slow", PARSED)}
    assert outcome.statuses["wf-slow"][0] == "completed"


def test_handler_whose_spans_were_dropped_is_a_telemetry_gap_not_hung(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    the_others_beat(log)
    log.heartbeats_every("scorer", start=1, stop=100, spans_dropped=0)
    log.heartbeats_every("scorer", start=101, stop=200, spans_dropped=40)
    parsed = up_to_parsed(ours, "wf-lost", start=100)
    ours.receive(parsed, service="scorer", at_s=100.5)  # its process span was dropped
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=130)

    assert outcome.kinds() == {("telemetry_gap", "wf-lost", PARSED)}
    assert "dropped 40 spans meanwhile" in outcome.of("telemetry_gap")[0]["detail"]


def test_workflow_whose_last_event_was_handled_but_never_reached_its_end_is_stalled(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log, runs=30)  # the learned model: recruit.candidate.scored ends it
    parsed = up_to_parsed(ours, "wf-quiet", start=100)
    ours.process(parsed, service="scorer", start=100.5, end=100.8)  # and published nothing
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=140)

    assert outcome.kinds() == {("stalled", "wf-quiet", f"after {PARSED}")}
    (finding,) = outcome.of("stalled")
    assert finding["root_cause"] == "no_next_event"
    assert outcome.statuses["wf-quiet"] == ("stalled", f"after {PARSED}", "no_next_event")


def test_a_step_that_ends_terminal_share_of_its_runs_is_an_end_not_stalled(
    store_layout: StoreLayout,
) -> None:
    # the scorer publishes nothing after one message in 31 (3 %): below the default
    # share of 5 % that is a stall, above a share of 3 % a branch that ends there
    log = SpanLog()
    ours = history(log, runs=30)
    parsed = up_to_parsed(ours, "wf-quiet", start=100)
    ours.process(parsed, service="scorer", start=100.5, end=100.8)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=140, terminal_share=0.03)

    assert outcome.kinds() == set()
    assert outcome.statuses["wf-quiet"][0] == "completed"


def test_a_sink_consuming_every_event_does_not_make_every_event_an_end(
    store_layout: StoreLayout,
) -> None:
    # an audit group records every event and publishes nothing (a common fan-out sink)
    log = SpanLog()
    ours = OurSpans(log)
    for i in range(30):
        first = ours.publish("intake", RECEIVED, workflow_id=f"wf-{i}", at_s=float(i))
        parsed = ours.step(first, service="parser", start=i + 0.1, end=i + 0.4, emits=PARSED)
        scored = ours.step(parsed, service="scorer", start=i + 0.5, end=i + 0.8, emits=SCORED)
        ours.process(scored, service="notifier", start=i + 0.9, end=i + 1.0)
        for event in (first, parsed, scored):
            ours.process(event, service="audit", start=event.at + 0.05, end=event.at + 0.06)
        if i == 3:  # now and then the audit flags something: it publishes too
            ours.step(parsed, service="audit", start=i + 0.45, end=i + 0.46, emits="audit.flag")
    for service in ("intake", "parser", "scorer", "notifier", "audit"):
        log.heartbeats_every(service, start=0, stop=200)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-quiet", at_s=100)
    parsed = ours.step(first, service="parser", start=100.1, end=100.4, emits=PARSED)
    for event in (first, parsed):
        ours.process(event, service="audit", start=event.at + 0.05, end=event.at + 0.06)
    ours.process(parsed, service="scorer", start=100.5, end=100.8)  # and published nothing
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=140)

    assert outcome.statuses["wf-quiet"] == ("stalled", f"after {PARSED}", "no_next_event")
    assert outcome.statuses["wf-0"][0] == "completed"


def test_an_instance_id_another_service_also_uses_borrows_none_of_its_liveness(
    store_layout: StoreLayout,
) -> None:
    # instance ids are unique per service only: two services on one host name
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    for service in ("intake", "parser"):
        log.heartbeats_every(service, start=0, stop=130)
    log.heartbeats_every("scorer", start=0, stop=130, instance="host-a")
    log.heartbeats_every("archiver", start=0, stop=20, instance="host-a")  # retired long ago
    parsed = up_to_parsed(ours, "wf-hang", start=100)
    ours.receive(parsed, service="scorer", at_s=100.5, instance="host-a")
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=130)

    assert outcome.kinds() == {("hung", "wf-hang", PARSED)}
    assert outcome.statuses["wf-hang"][2] == "hung"


def test_a_dead_letter_queue_consumer_is_expected_of_dead_letters_not_of_every_message(
    store_layout: StoreLayout,
) -> None:
    # the scorer dead-letters a poison CV to dlq.<subject> with the original headers
    # (its Nats-Msg-Id too), and an ops group consumes the dead-letter queue
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-poison", start=20)
    span = ours.process(parsed, service="scorer", start=20.5, end=20.7, error="bad cv",
                        settle="term")  # fmt: skip
    dead = ours.publish(
        "scorer", f"dlq.{PARSED}", workflow_id="wf-poison", at_s=20.6,
        trace_id=parsed.trace_id, parent_span_id=span, message_id=parsed.message_id,
    )  # fmt: skip
    ours.process(dead, service="dlq-monitor", start=20.8, end=20.9)
    healthy_run(ours, "wf-later", start=100)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=150)

    assert outcome.kinds() == {("dead_lettered", "wf-poison", PARSED)}
    assert outcome.statuses["wf-later"][0] == "completed"


def test_a_handler_seen_overrunning_its_deadline_is_hung_even_while_its_service_drops_spans(
    store_layout: StoreLayout,
) -> None:
    # its process span arrived, ended in error 40 s past its start: the hang is seen,
    # so spans the scorer dropped meanwhile (other ones) do not explain it away
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    the_others_beat(log)
    log.heartbeats_every("scorer", start=1, stop=100)
    log.heartbeats_every("scorer", start=101, stop=200, spans_dropped=40)
    parsed = up_to_parsed(ours, "wf-hang", start=100)
    ours.process(parsed, service="scorer", start=100.5, end=140.5,
                 error="cancelled: the agent stopped mid-step", settle=None)  # fmt: skip
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=150)

    assert outcome.kinds() == {("hung", "wf-hang", PARSED)}
    (hung,) = outcome.of("hung")
    assert "ran past its deadline before it was stopped" in hung["detail"]


def test_a_message_its_handler_terminated_without_raising_is_dead_lettered(
    store_layout: StoreLayout,
) -> None:
    # a TracedMsg consumer reads the CV, finds it unusable and terms it: its process
    # span ended without error, and the message was refused, not processed
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-refused", start=100)
    ours.process(parsed, service="scorer", start=100.5, end=100.7, settle="term")
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=103)

    assert outcome.kinds() == {("dead_lettered", "wf-refused", PARSED)}
    assert "terminated by its handler" in outcome.of("dead_lettered")[0]["detail"]
    assert outcome.statuses["wf-refused"][0::2] == ("stalled", "dead_lettered")


def test_an_attempt_its_handler_gave_back_with_a_nak_is_no_first_processing(
    store_layout: StoreLayout,
) -> None:
    # not ready yet: the handler returns normally but naks for a redelivery in 20 s,
    # which it then processes: one processing, not a duplicate
    log = SpanLog()
    ours = history(log)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-later", at_s=100)
    parsed = ours.step(first, service="parser", start=100.1, end=100.4, emits=PARSED)
    ours.process(parsed, service="scorer", start=100.5, end=100.6, settle="nak", nak_delay_s=20)
    log.write(store_layout)
    waiting = correlate(store_layout, now_s=115)
    scored = ours.step(parsed, service="scorer", start=120.6, end=120.9, emits=SCORED)
    ours.process(scored, service="notifier", start=121, end=121.1)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=150)

    assert waiting.kinds() == set()
    assert waiting.statuses["wf-later"][0] == "in_flight"
    assert outcome.kinds() == set()
    assert outcome.statuses["wf-later"][0] == "completed"


def test_a_nak_whose_redelivery_never_comes_says_the_handler_gave_the_message_back(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-given-back", start=100)
    ours.process(parsed, service="scorer", start=100.5, end=100.6, settle="nak", nak_delay_s=20)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=150)

    assert outcome.kinds() == {("failed", "wf-given-back", PARSED)}
    detail = outcome.of("failed")[0]["detail"]
    assert "raised" not in detail
    assert "gave it back (nak) at 12:01:40 UTC, and no redelivery came within 49 s" in detail


def test_a_nak_from_inside_the_handler_waits_out_the_backoff_it_asked(
    store_layout: StoreLayout,
) -> None:
    # a TracedMsg handler naks before it returns (not ready: again in 30 s), so its
    # settle span starts inside the attempt: the redelivery is due, not missing
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-backoff", start=100)
    ours.process(
        parsed, service="scorer", start=100.5, end=100.7, error="not ready",
        settle="nak", nak_delay_s=30, settle_at=100.65,
    )  # fmt: skip
    log.write(store_layout)

    waiting = correlate(store_layout, now_s=115)  # past retry_grace_s, inside the backoff

    assert waiting.kinds() == set()
    assert waiting.statuses["wf-backoff"][0] == "in_flight"
