"""correlate --watch's engine: a cold pass, then ticks that fold in only what
arrived; findings survive a restart without being found (or alerted) twice."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import correlator
import correlator.model_refresh as model_refresh_module
import correlator.tick_scope as tick_scope_module
from collector.compaction import Compactor
from collector.segment_writer import SegmentWriter
from correlator.engine import Correlator
from correlator.findings import read_findings
from correlator.ledger import AnomalyLedger
from correlator.queries import anomaly_counts
from correlator.thresholds import Thresholds
from store import StoreLayout
from store.schema import SPANS
from tests.correlator.pipelines import (
    PARSED,
    RECEIVED,
    SCORED,
    forgetful_watcher,
    healthy_run,
    history,
    lost_while_the_scorer_was_down,
    read_outcome,
    the_others_beat,
    time_passes,
    up_to_parsed,
)
from tests.correlator.span_shapes import ForeignSpans, OurSpans, Published, SpanLog, at


def _engine(layout: StoreLayout) -> Correlator:
    return Correlator(data_dir=layout.root, thresholds=Thresholds(min_deadline_s=5))


def _refreshing_engine(layout: StoreLayout) -> Correlator:
    """A watcher that learns the model again at every tick (beside it)."""
    return Correlator(
        data_dir=layout.root, thresholds=Thresholds(min_deadline_s=5), model_refresh_s=0
    )


def _store_a_dropped_message(layout: StoreLayout) -> None:
    """History, then wf-drop: its `recruit.cv.parsed` (t=100.4) never consumed."""
    log = SpanLog()
    up_to_parsed(history(log), "wf-drop", start=100)
    log.write(layout)


def test_tick_finds_a_fault_in_spans_that_arrived_after_the_cold_pass(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    log.write(store_layout)
    engine = _engine(store_layout)
    assert engine.cold_pass(now=at(50)) == []

    up_to_parsed(ours, "wf-late", start=100)
    log.write(store_layout)
    assert engine.tick(now=at(102)) == []  # within the deadline
    new = engine.tick(now=at(110))
    engine.write_findings()
    engine.close()

    assert [(a["kind"], a["workflow_id"]) for a in new] == [("dropped", "wf-late")]
    assert read_outcome(store_layout).statuses["wf-late"][0] == "stalled"


def test_tick_sees_the_stuck_message_consumed_and_resolves_the_finding(
    store_layout: StoreLayout,
) -> None:
    # and the edge counts the message once, not dropped: it was consumed late, not lost
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-slow", start=100)
    log.write(store_layout)
    engine = _engine(store_layout)
    (dropped,) = engine.cold_pass(now=at(110))
    engine.write_findings()  # the next write rewrites only what changed since

    OurSpans(log).process(parsed, service="scorer", start=111, end=111.5)
    log.write(store_layout)
    assert engine.tick(now=at(112)) == []
    engine.write_findings()
    engine.close()

    outcome = read_outcome(store_layout)
    (row,) = outcome.anomalies
    assert row["anomaly_id"] == dropped["anomaly_id"] and row["resolved_at"] is not None
    assert outcome.statuses["wf-slow"][0] == "completed"
    edge = correlator.connect(store_layout.root).execute(
        "SELECT messages, drop_rate FROM edges WHERE subject = $s AND consumer_service = 'scorer'",
        {"s": PARSED},
    )
    assert edge.fetchone() == (9, 0)  # the history's 8, and the late one once
    # the Overview counts open anomalies only, as the Anomalies page lists them
    assert anomaly_counts(correlator.connect(store_layout.root), since=None).empty


def test_a_step_reported_stuck_that_completes_late_is_not_slow_too(
    store_layout: StoreLayout,
) -> None:
    # one anomaly per fault: the scorer was down, its message waited, and completed
    # long past the step's usual latency once the scorer was back
    log = SpanLog()
    ours = history(log, runs=25, heartbeats_until=None)
    the_others_beat(log)
    log.heartbeats_every("scorer", start=1, stop=95)  # down at 95 s
    parsed = up_to_parsed(ours, "wf-down", start=100)
    log.write(store_layout)
    engine = _engine(store_layout)
    (down,) = [a for a in engine.cold_pass(now=at(130)) if a["workflow_id"] == "wf-down"]
    assert (down["kind"], down["root_cause"]) == ("stalled", "consumer_down")

    log.heartbeats_every("scorer", start=140, stop=200)  # back, and catching up
    scored = ours.step(parsed, service="scorer", start=140, end=140.3, emits=SCORED)
    ours.process(scored, service="notifier", start=140.4, end=140.5)
    log.write(store_layout)
    assert engine.tick(now=at(145)) == []
    engine.write_findings()
    engine.close()

    outcome = read_outcome(store_layout)
    assert [(a["kind"], a["resolved_at"] is not None) for a in outcome.anomalies
            if a["workflow_id"] == "wf-down"] == [("stalled", True)]  # fmt: skip
    assert outcome.statuses["wf-down"][0] == "completed"


def test_spans_delivered_twice_by_the_bus_are_not_a_duplicate(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log)
    log.write(store_layout)
    engine = _engine(store_layout)
    engine.cold_pass(now=at(50))

    healthy_run(ours, "wf-x", start=100)
    rows = list(log.rows)
    log.write(store_layout)
    log.rows = rows  # the same segment again: at-least-once ingest
    log.write(store_layout)

    assert engine.tick(now=at(120)) == []
    engine.close()


def test_spans_stored_twice_are_judged_once_by_a_cold_pass(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log)
    healthy_run(ours, "wf-x", start=100)
    rows = list(log.rows)
    log.write(store_layout)
    log.rows = rows  # every span of the store a second time: a redelivered batch
    log.write(store_layout)

    engine = _engine(store_layout)
    assert engine.cold_pass(now=at(200)) == []
    (status,) = engine.con.execute(
        "SELECT status FROM all_status WHERE workflow_id = 'wf-x'"
    ).fetchone()
    engine.close()
    assert status == "completed"


def test_tick_reads_heartbeats_written_after_the_cold_pass(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    for service in ("intake", "parser", "scorer", "notifier"):
        log.heartbeats_every(service, start=0, stop=60)
    log.write(store_layout)
    engine = _engine(store_layout)
    assert engine.cold_pass(now=at(60)) == []

    # every service keeps beating: the scorer is up, so a message it never got was
    # dropped (with only the heartbeats of the cold pass, it would look down)
    for service in ("intake", "parser", "scorer", "notifier"):
        log.heartbeats_every(service, start=61, stop=130)
    up_to_parsed(ours, "wf-lost", start=100)
    log.write(store_layout)
    new = engine.tick(now=at(130))
    engine.close()

    assert [(a["kind"], a["workflow_id"]) for a in new] == [("dropped", "wf-lost")]


def test_watcher_forgets_old_heartbeats_but_not_an_instances_last(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    history(log, heartbeats_until=None)
    log.heartbeats_every("parser", start=0, stop=100)
    log.heartbeat("scorer", at_s=5)  # went silent long ago
    log.write(store_layout)
    engine = Correlator(
        data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=5), keep_s=1.0
    )
    engine.cold_pass(now=at(100))
    engine.signals.keep_s = 10.0
    engine.signals.evict(engine.con, now=at(100))
    kept = engine.con.execute(
        'SELECT service, count(*), min(epoch("at")), max(epoch("at")) '
        "FROM heartbeats GROUP BY service ORDER BY service"
    ).fetchall()
    engine.close()
    t0 = at(0).timestamp()
    assert [(s, n, lo - t0, hi - t0) for s, n, lo, hi in kept] == [
        ("parser", 11, 90.0, 100.0),
        ("scorer", 1, 5.0, 5.0),
    ]


def test_heartbeats_compacted_under_a_watcher_are_not_counted_twice(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    history(log, heartbeats_until=None)
    log.heartbeats_every("parser", start=0, stop=9)
    log.write(store_layout)
    log.heartbeats_every("parser", start=10, stop=19)
    log.write(store_layout)
    engine = _engine(store_layout)
    engine.cold_pass(now=at(20))

    # the collector merges the hour's two heartbeat segments into one
    compactor = Compactor(layout=store_layout, grace=0)
    assert compactor.run_once(now=at(3 * 3600)) >= 1
    engine.tick(now=at(21))
    (beats,) = engine.con.execute("SELECT count(*) FROM heartbeats").fetchone()
    engine.close()
    assert beats == 20


def test_restarted_correlator_does_not_report_old_findings_as_new(
    store_layout: StoreLayout,
) -> None:
    _store_a_dropped_message(store_layout)
    first = _engine(store_layout)
    (found,) = first.cold_pass(now=at(120))
    first.ledger.mark_alerted([found["anomaly_id"]], at=at(120), webhook=False)
    first.write_findings()
    first.close()

    second = _engine(store_layout)
    assert second.cold_pass(now=at(130)) == []
    assert second.ledger.unalerted() == []
    second.close()
    (row,) = AnomalyLedger.load(store_layout).rows()
    assert row["detected_at"] == at(120) and row["alerted_at"] == at(120)


def test_anomalies_changed_since_the_full_file_are_read_back_from_the_recent_one(
    store_layout: StoreLayout,
) -> None:
    _store_a_dropped_message(store_layout)
    first = _engine(store_layout)
    (found,) = first.cold_pass(now=at(120))
    first.write_findings()  # every anomaly: the full file
    first.ledger.mark_alerted([found["anomaly_id"]], at=at(121), webhook=False)
    first.write_findings()  # soon after: only what changed, in the recent file
    first.close()

    full = read_findings(store_layout, "anomalies").to_pylist()
    assert [row["alerted_at"] for row in full] == [None]
    second = _engine(store_layout)
    assert second.ledger.unalerted() == []  # a restart does not alert it again
    second.close()
    con = correlator.connect(store_layout.root)
    rows = con.execute("SELECT anomaly_id, alerted_at FROM anomalies").fetchall()
    con.close()
    assert rows == [(found["anomaly_id"], at(121))]


def test_open_workflows_are_rejudged_as_time_passes_without_new_spans(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-hang", start=100)
    ours.receive(parsed, service="scorer", at_s=100.5)
    log.write(store_layout)
    engine = _engine(store_layout)
    assert engine.cold_pass(now=at(101)) == []

    new = engine.tick(now=at(107))
    engine.close()

    assert [(a["kind"], a["workflow_id"], a["step"]) for a in new] == [("hung", "wf-hang", PARSED)]


def test_a_stalled_workflow_s_cause_follows_the_facts_without_new_spans(
    store_layout: StoreLayout,
) -> None:
    # settled (stalled, its anomaly told), it is re-judged every few ticks, not at
    # each: its cause still changes as time passes (the scorer is back at 110 s)
    lost_while_the_scorer_was_down(store_layout)
    engine = _engine(store_layout)
    engine.cold_pass(now=at(101))
    engine.tick(now=at(108))
    during = _latest_verdict(engine, "wf-lost", columns="status, root_cause")
    for second in range(109, 131):
        engine.tick(now=at(second))
    after = _latest_verdict(engine, "wf-lost", columns="status, root_cause")
    engine.close()

    assert during == ("stalled", "consumer_down")
    assert after == ("stalled", "dropped")


def test_a_stalled_workflow_s_second_wait_is_told_at_the_first_tick_past_its_deadline(
    store_layout: StoreLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    # stalled already (its first `recruit.cv.parsed` lost), a settled workflow is not
    # re-judged at every tick; its second message, published later and lost too, runs
    # past its deadline (5 s) at t=115.4: told then, not on the workflow's turn
    monkeypatch.setattr(tick_scope_module, "SETTLED_EVERY", 1000)  # no turn comes
    log = SpanLog()
    ours = history(log)
    up_to_parsed(ours, "wf-two", start=100)
    log.write(store_layout)
    engine = _engine(store_layout)
    engine.cold_pass(now=at(101))
    first = engine.tick(now=at(106))
    second_parse = ours.step(
        ours.publish("intake", RECEIVED, workflow_id="wf-two", at_s=110),
        service="parser", start=110.1, end=110.4, emits=PARSED,
    )  # fmt: skip
    log.write(store_layout)
    before = [engine.tick(now=at(second)) for second in range(111, 116)]
    at_deadline = engine.tick(now=at(116))
    engine.close()

    assert [(a["kind"], a["workflow_id"]) for a in first] == [("dropped", "wf-two")]
    assert before == [[]] * 5
    assert [(a["kind"], a["message_id"]) for a in at_deadline] == [
        ("dropped", second_parse.message_id)
    ]


def _causes_while_the_scorer_beats(
    layout: StoreLayout, workflow_id: str, *, scorer_beats: list[tuple[float, float]]
) -> dict[int, tuple[str, str]]:
    """``workflow_id``'s `recruit.cv.parsed` (t=100.4) never consumed, every other
    service heartbeating, the scorer over ``scorer_beats`` (start, stop): its status
    and cause after each tick from 106 s to 111 s, with no span arriving meanwhile."""
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    the_others_beat(log)
    for start, stop in scorer_beats:
        log.heartbeats_every("scorer", start=start, stop=stop)
    up_to_parsed(ours, workflow_id, start=100)
    log.write(layout)
    engine = _engine(layout)
    engine.cold_pass(now=at(101))
    causes = {}
    for second in range(106, 112):
        engine.tick(now=at(second))
        causes[second] = _latest_verdict(engine, workflow_id, columns="status, root_cause")
    engine.close()
    return causes


def test_a_stalled_workflow_s_cause_changes_when_its_consumer_stops_catching_up(
    store_layout: StoreLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the scorer, down from 95 s, is back at 103 s, before wf-back's message (100.4 s)
    # runs past its 5 s deadline: consumer_down at 106 s while the scorer works off
    # its backlog (one deadline from its return), dropped once that is over (108 s).
    # No span and no heartbeat says so, time alone: a settled workflow is re-judged
    # then, not on its turn
    monkeypatch.setattr(tick_scope_module, "SETTLED_EVERY", 1000)  # no turn comes
    causes = _causes_while_the_scorer_beats(
        store_layout, "wf-back", scorer_beats=[(1, 95), (103, 200)]
    )
    assert causes[106] == ("stalled", "consumer_down")
    assert causes[109] == ("stalled", "dropped")


def test_a_dropped_message_s_workflow_says_consumer_down_once_its_consumer_falls_silent(
    store_layout: StoreLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    # wf-drop's `recruit.cv.parsed` (t=100.4) is dropped at 106 s, while the scorer
    # still beats; its last heartbeat is at 104 s, so it is silent from 107 s on (three
    # 1 s intervals). Nothing arrives to say so: a settled workflow is re-judged then
    monkeypatch.setattr(tick_scope_module, "SETTLED_EVERY", 1000)  # no turn comes
    causes = _causes_while_the_scorer_beats(store_layout, "wf-drop", scorer_beats=[(1, 104)])
    assert causes[106] == ("stalled", "dropped")
    assert causes[108] == ("stalled", "consumer_down")


@dataclass(frozen=True)
class _Late:
    root: dict[str, Any]  # the row of its first publish span
    parsed: Published


def _completed_and_forgotten(
    store_layout: StoreLayout,
) -> tuple[SpanLog, OurSpans, Correlator, _Late]:
    """wf-late, completed at t=101 and judged by a cold pass, which a watcher that
    forgets fast no longer holds after its tick at t=202."""
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-late", at_s=100)
    parsed = ours.step(first, service="parser", start=100.1, end=100.4, emits=PARSED)
    scored = ours.step(parsed, service="scorer", start=100.5, end=100.8, emits=SCORED)
    ours.process(scored, service="notifier", start=100.9, end=101)
    root = next(row for row in log.rows if row["span_id"] == first.span_id)
    log.write(store_layout)
    engine = forgetful_watcher(store_layout)
    engine.cold_pass(now=at(110))
    time_passes(engine, ours, store_layout, at_s=200)
    in_memory = engine.con.execute("SELECT count(*) FROM work_spans WHERE workflow_id = 'wf-late'")
    assert in_memory.fetchone() == (0,)
    return log, ours, engine, _Late(root=root, parsed=parsed)


def test_duplicate_arriving_after_its_workflow_left_memory_is_still_a_duplicate(
    store_layout: StoreLayout,
) -> None:
    log, ours, engine, late = _completed_and_forgotten(store_layout)

    ours.process(late.parsed, service="scorer", start=300, end=300.2)  # redelivered much later
    log.write(store_layout)
    new = engine.tick(now=at(301))
    engine.close()

    assert [(a["kind"], a["workflow_id"]) for a in new] == [("duplicate", "wf-late")]


def test_root_span_stored_again_after_its_workflow_left_memory_is_no_new_workflow(
    store_layout: StoreLayout,
) -> None:
    log, _, engine, late = _completed_and_forgotten(store_layout)

    # the batch that held wf-late's first publish, ingested again much later (a
    # collector restarted before it acked): alone, it would look like a message
    # nobody consumed
    log.rows = [{**late.root, "received_at": at(300)}]
    log.write(store_layout)
    new = engine.tick(now=at(301))
    engine.write_findings()
    engine.close()

    assert new == []
    assert read_outcome(store_layout).statuses["wf-late"][0] == "completed"


def test_cold_pass_watermark_is_the_newest_span_with_or_without_segment_statistics(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    healthy_run(ours, "wf-last", start=150)
    newest = max(row["received_at"] for row in log.rows)
    log.write(store_layout)
    engine = _engine(store_layout)
    engine.cold_pass(now=at(400))
    from_statistics = engine.watermark
    engine.close()

    for segment in store_layout.segments("spans"):  # as written by a tool that keeps none
        pq.write_table(pq.read_table(segment), segment, write_statistics=False)
    engine = _engine(store_layout)
    engine.cold_pass(now=at(400))
    scanned = engine.watermark
    engine.close()

    assert from_statistics == scanned == newest


def test_each_workflow_has_one_status_its_latest_across_ticks_and_evictions(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-slow", start=100)
    log.write(store_layout)
    engine = Correlator(
        data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=5), evict_every_ticks=3
    )
    engine.cold_pass(now=at(101))
    engine.write_findings()  # the full status file: wf-slow in flight
    engine.tick(now=at(110))  # stalled
    OurSpans(log).process(parsed, service="scorer", start=111, end=111.5)
    log.write(store_layout)
    engine.tick(now=at(112))  # completed
    engine.write_findings()
    after_ticks = _status_files(store_layout)
    engine.tick(now=at(113))  # the third tick evicts, and forgets superseded verdicts
    engine.write_findings()
    (one_each,) = engine.con.execute(
        "SELECT count(*) = count(DISTINCT workflow_id) FROM all_status"
    ).fetchone()
    engine.close()

    assert one_each  # a watcher's memory does not grow a verdict per workflow per tick

    for full, recent in (after_ticks, _status_files(store_layout)):
        assert all(len(verdicts) == 1 for verdicts in [*full.values(), *recent.values()])
        assert recent.get("wf-slow", full["wf-slow"]) == ["completed"]


def _status_files(layout: StoreLayout) -> tuple[dict[str, list[str]], ...]:
    """The verdicts of each workflow in the full status file and in the recent one."""
    files = []
    for name in ("workflow_status", "workflow_status_recent"):
        verdicts: dict[str, list[str]] = {}
        for row in read_findings(layout, name).to_pylist():
            verdicts.setdefault(row["workflow_id"], []).append(row["status"])
        files.append(verdicts)
    return tuple(files)


def test_a_model_refresh_that_fails_is_logged_and_detection_goes_on(
    store_layout: StoreLayout, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log = SpanLog()
    ours = history(log)
    log.write(store_layout)
    engine = _refreshing_engine(store_layout)
    engine.cold_pass(now=at(50))
    up_to_parsed(ours, "wf-late", start=100)
    log.write(store_layout)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError("No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(model_refresh_module, "learn_model", disk_full)
        first = engine.tick(now=at(110))  # begins learning again, beside it
        engine.refresh.wait()
    new = engine.tick(now=at(111))
    engine.close()

    assert [(a["kind"], a["workflow_id"]) for a in first + new] == [("dropped", "wf-late")]
    assert "learning the model again failed" in caplog.text
    assert "No space left on device" in caplog.text


def test_a_model_learned_beside_the_ticks_is_taken_in_by_the_next_one(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    log.write(store_layout)
    engine = _refreshing_engine(store_layout)
    engine.cold_pass(now=at(50))
    for i in range(6):  # a consumer group deployed since: an auditor of every application
        first = ours.publish("intake", RECEIVED, workflow_id=f"wf-audited-{i}", at_s=60.0 + i)
        ours.process(first, service="auditor", start=60.5 + i, end=60.6 + i)
    log.write(store_layout)

    engine.tick(now=at(70))  # begins learning again, from the store as it is now
    engine.refresh.wait()
    learned_before = {(s["subject"], s["consumer"]) for s in engine.model.steps}
    engine.tick(now=at(71))
    written = read_findings(store_layout, "model_steps").to_pylist()
    engine.close()

    assert (RECEIVED, "auditor") not in learned_before
    assert (RECEIVED, "auditor") in {(s["subject"], s["consumer"]) for s in engine.model.steps}
    assert (RECEIVED, "auditor") in {(s["subject"], s["consumer"]) for s in written}


def test_learning_again_on_a_store_too_large_to_learn_often_waits_longer_between_refreshes(
    store_layout: StoreLayout, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log = SpanLog()
    history(log)
    log.write(store_layout)
    # as if learning took a thousandth of a core's time at most: however quick it was
    # here, the next refresh is far off
    monkeypatch.setattr(model_refresh_module, "MAX_CORE_SHARE", 0.001)
    caplog.set_level(logging.INFO, logger="correlator.model_refresh")
    engine = _refreshing_engine(store_layout)  # every tick, were learning quick enough
    engine.cold_pass(now=at(50))
    engine.tick(now=at(51))  # begins learning again, beside it
    engine.refresh.wait()
    for second in range(52, 55):
        engine.tick(now=at(second))
        engine.refresh.wait()
    engine.close()

    learned = [
        r.getMessage() for r in caplog.records if "learned the model again" in r.getMessage()
    ]
    assert len(learned) == 1, learned
    assert "on a store this large, the next in" in learned[0]
    assert "learning takes at most 0.1% of a core" in learned[0]


def test_closing_a_watcher_stops_the_model_it_is_learning(
    store_layout: StoreLayout, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log = SpanLog()
    history(log)
    log.write(store_layout)
    engine = _refreshing_engine(store_layout)
    engine.cold_pass(now=at(50))
    learning = threading.Event()

    def learn_for_hours(con: duckdb.DuckDBPyConnection, **kwargs: object) -> None:
        learning.set()
        time.sleep(0.3)  # between two statements: an interrupt now would be lost
        con.execute("SELECT count(*) FROM range(10_000_000_000_000)").fetchone()

    monkeypatch.setattr(model_refresh_module, "learn_model", learn_for_hours)
    engine.tick(now=at(51))
    assert learning.wait(timeout=30)
    closing = threading.Thread(target=engine.close)
    closing.start()
    closing.join(timeout=60)  # without the interrupt, hours

    assert not closing.is_alive()
    assert "learning the model again failed" not in caplog.text


def test_a_tick_that_fails_early_takes_back_only_what_it_added(
    store_layout: StoreLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    log.write(store_layout)
    engine = forgetful_watcher(store_layout)
    engine.cold_pass(now=at(50))
    first = ours.publish("intake", RECEIVED, workflow_id="wf-late", at_s=100)
    parsed = ours.step(first, service="parser", start=100.1, end=100.4, emits=PARSED)
    scored = ours.step(parsed, service="scorer", start=100.5, end=100.8, emits=SCORED)
    ours.process(scored, service="notifier", start=100.9, end=101)
    root = next(r for r in log.rows if r["span_id"] == first.span_id)
    log.write(store_layout)
    engine.tick(now=at(102))  # the store holds wf-late from now on

    def segment_gone(*args: object, **kwargs: object) -> None:
        raise duckdb.IOException("No files found that match the pattern")

    with monkeypatch.context() as patch:  # fails before it reads a span
        patch.setattr(engine.signals, "fold_in", segment_gone)
        with pytest.raises(duckdb.IOException):
            engine.tick(now=at(103))
    time_passes(engine, ours, store_layout, at_s=200)  # wf-late leaves memory
    log.rows = [{**root, "received_at": at(300)}]  # its first publish, stored again
    log.write(store_layout)
    new = engine.tick(now=at(301))
    engine.write_findings()
    engine.close()

    assert new == []  # brought back whole, not a publish consumed by nobody
    assert read_outcome(store_layout).statuses["wf-late"][0] == "completed"


def test_heartbeats_a_failed_tick_read_are_read_again_by_the_next(
    store_layout: StoreLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = SpanLog()
    history(log, heartbeats_until=50)
    log.write(store_layout)
    engine = _engine(store_layout)
    engine.cold_pass(now=at(50))
    log.heartbeats_every("scorer", start=51, stop=60)
    log.write(store_layout)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError("No space left on device")

    with monkeypatch.context() as patch:  # fails after reading the new heartbeats
        patch.setattr(engine.memory, "take_in", disk_full)
        with pytest.raises(OSError):
            engine.tick(now=at(61))
    engine.tick(now=at(61))
    (beats,) = engine.con.execute(
        'SELECT count(*) FROM heartbeats WHERE "at" > $t', {"t": at(50)}
    ).fetchone()
    engine.close()

    assert beats == 10  # else the scorer would look silent since 50 s


def test_a_second_cold_pass_judges_every_workflow_again(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log)
    up_to_parsed(ours, "wf-drop", start=300)  # the history is minutes older
    log.write(store_layout)
    engine = _engine(store_layout)
    engine.cold_pass(now=at(320))  # memory keeps only what may change: wf-drop
    engine.cold_pass(now=at(330))
    (judged,) = engine.con.execute("SELECT count(DISTINCT workflow_id) FROM all_status").fetchone()
    engine.close()

    assert judged == 9  # the 8 runs of the history and wf-drop


def test_a_store_older_than_consumer_lag_that_cannot_take_it_is_still_judged(
    store_layout: StoreLayout,
) -> None:
    _store_a_dropped_message(store_layout)
    shutil.rmtree(store_layout.table_dir("consumer_lag"))  # a store from before it
    store_layout.table_dir("consumer_lag").write_text("in the way")  # and unwritable there

    engine = _engine(store_layout)
    found = engine.cold_pass(now=at(120))
    engine.tick(now=at(121))
    engine.close()

    assert [(a["kind"], a["workflow_id"]) for a in found] == [("dropped", "wf-drop")]


def test_a_span_stored_again_brings_back_the_other_traces_of_its_workflow(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    parsed = _split_run(ours, "wf-split", start=100)
    publish = next(row for row in log.rows if row["span_id"] == parsed.span_id)
    log.write(store_layout)
    engine = forgetful_watcher(store_layout)
    engine.cold_pass(now=at(110))
    time_passes(engine, ours, store_layout, at_s=200)  # both traces leave memory

    log.rows = [{**publish, "received_at": at(300)}]  # the second trace's first span again
    log.write(store_layout)
    new = engine.tick(now=at(301))
    verdict = engine.con.execute(
        "SELECT workflow_type, status, last_activity_at FROM d_workflow_status "
        "WHERE workflow_id = 'wf-split'"
    ).fetchone()
    engine.close()

    assert [a for a in new if a["workflow_id"] == "wf-split"] == []
    assert verdict == (RECEIVED, "completed", at(101))  # judged whole, not from its parser on


def _split_run(ours: OurSpans, workflow_id: str, *, start: float, gap: float = 0.0) -> Published:
    """A run whose trace context broke at the parser: its publish starts a new trace
    ``gap`` seconds later, joined to the first by the workflow id alone. Returns that
    publish."""
    first = ours.publish("intake", RECEIVED, workflow_id=workflow_id, at_s=start)
    ours.process(first, service="parser", start=start + 0.1, end=start + 0.4)
    second = start + gap
    parsed = ours.publish("parser", PARSED, workflow_id=workflow_id, at_s=second + 0.38)
    scored = ours.step(parsed, service="scorer", start=second + 0.5, end=second + 0.8,
                       emits=SCORED)  # fmt: skip
    ours.process(scored, service="notifier", start=second + 0.9, end=second + 1.0)
    return parsed


def _verdict(engine: Correlator, workflow_id: str) -> tuple[Any, ...]:
    return engine.con.execute(
        "SELECT workflow_type, status FROM d_workflow_status WHERE workflow_id = $w",
        {"w": workflow_id},
    ).fetchone()


@pytest.mark.parametrize("names_its_workflow", [True, False], ids=["ack", "own-span"])
def test_a_late_span_of_one_trace_has_its_whole_workflow_judged_again(
    store_layout: StoreLayout, names_its_workflow: bool
) -> None:
    log = SpanLog()
    ours = history(log, runs=30, heartbeats_until=None)  # enough runs to trust the model
    _split_run(ours, "wf-split", start=100)
    late = next(
        r for r in log.rows
        if r["workflow_id"] == "wf-split" and r["operation"] == "settle"
        and r["service_name"] == "parser"
    )  # fmt: skip
    log.rows.remove(late)  # the parser's ack, in the first trace, comes late
    if not names_its_workflow:  # or a span of the parser's own, which names none
        log.add(trace_id=late["trace_id"], parent_span_id=None, name="cleanup",
                kind="internal", service_name="parser", start=100.2, end=100.3)  # fmt: skip
        late = log.rows.pop()
    log.write(store_layout)
    engine = _engine(store_layout)
    engine.cold_pass(now=at(102))

    log.rows = [{**late, "received_at": at(109)}]
    log.write(store_layout)
    new = engine.tick(now=at(110))
    verdict = _verdict(engine, "wf-split")
    engine.close()

    assert [(a["kind"], a["workflow_id"]) for a in new] == []
    assert verdict == (RECEIVED, "completed")  # not judged on its first trace alone


def test_a_cold_pass_keeps_a_workflow_whole_for_the_ticks(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    _split_run(ours, "wf-split", start=100, gap=8)  # its second trace starts at 108
    late = [
        r for r in log.rows
        if r["workflow_id"] == "wf-split" and r["operation"] == "settle"
        and r["service_name"] in ("scorer", "notifier")
    ]  # fmt: skip
    log.rows = [r for r in log.rows if r not in late]  # their acks, in the second trace
    log.write(store_layout)
    engine = forgetful_watcher(store_layout)
    engine.cold_pass(now=at(110))  # only the second trace is recent (5 s)
    verdicts = []
    for t, row in zip((112, 114), late, strict=True):  # each tick also evicts
        log.rows = [{**row, "received_at": at(t - 1)}]
        log.write(store_layout)
        verdicts.append((engine.tick(now=at(t)), _verdict(engine, "wf-split")))
    engine.close()

    # never a run that starts at the parser, before or after the first trace went quiet
    assert verdicts == [([], (RECEIVED, "completed"))] * 2


def test_a_watcher_reports_an_orphan_whose_workflow_completed_within_the_grace(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    log.write(store_layout)
    engine = _engine(store_layout)
    engine.cold_pass(now=at(50))
    healthy_run(ours, "wf-orphan", start=100)
    publish = next(
        r for r in log.rows
        if r["workflow_id"] == "wf-orphan" and r["subject"] == RECEIVED and r["operation"] == "send"
    )  # fmt: skip
    log.rows.remove(publish)  # the producer's span never arrives
    log.write(store_layout)

    new = []
    for t in (102, 105, 112, 115):  # completed at once; the orphan grace is 10 s
        new += engine.tick(now=at(t))
    engine.close()

    assert [(a["kind"], a["workflow_id"], a["step"]) for a in new] == [
        ("orphan", "wf-orphan", RECEIVED)
    ]


def _orders(
    go: ForeignSpans, *, start: float, ship_at: float | None = None
) -> tuple[Published, tuple[str, str]]:
    """An order as another instrumentation traces it, links only: the gateway's
    publish, billing's step and shipping's processing, each a trace of its own.
    Returns the publish and shipping's (trace id, span id)."""
    placed = go.publish("gateway", "orders.placed", at_s=start)
    paid = go.step(placed, service="billing", start=start + 0.2, end=start + 0.3,
                   emits="orders.paid")  # fmt: skip
    ship = start + 0.4 if ship_at is None else ship_at
    return placed, go.process(paid, service="shipping", start=ship, end=ship + 0.1)


def test_a_foreign_producer_span_arriving_late_joins_its_consumers_workflow(
    store_layout: StoreLayout,
) -> None:
    # another instrumentation, links only: each consumer starts a trace of its own
    log = SpanLog()
    go = ForeignSpans(log, links_only=True)

    for i in range(6):
        _orders(go, start=float(i))
    placed, _ = _orders(go, start=100.0)
    root = next(r for r in log.rows if r["span_id"] == placed.span_id)
    log.rows.remove(root)  # the gateway's exporter lags: its publish span comes late
    log.write(store_layout)
    engine = _engine(store_layout)
    engine.cold_pass(now=at(101))  # billing's trace is a workflow of its own, for now

    log.rows = [{**root, "received_at": at(107)}]
    log.write(store_layout)
    new = engine.tick(now=at(108)) + engine.tick(now=at(110))
    engine.write_findings()
    engine.close()

    assert new == []
    outcome = read_outcome(store_layout)
    assert outcome.anomalies == []
    assert outcome.statuses[placed.trace_id] == ("completed", None, None)
    # no verdict left of the workflow billing's trace made alone
    assert _judged_workflows(store_layout) == set(outcome.statuses)
    assert len(outcome.statuses) == 7


@pytest.mark.parametrize("consumers_seen_by", ["cold-pass", "tick"])
def test_a_foreign_producer_span_arriving_after_its_consumers_left_memory_brings_them_back(
    store_layout: StoreLayout, consumers_seen_by: str
) -> None:
    # links only; the gateway's publish span comes 30 s late: billing's trace is an
    # orphan once the grace has passed, and leaves memory once it has passed twice
    log = SpanLog()
    go = ForeignSpans(log, links_only=True)
    for i in range(6):
        _orders(go, start=float(i))
    engine = forgetful_watcher(store_layout)
    if consumers_seen_by == "tick":
        log.write(store_layout)
        engine.cold_pass(now=at(50))
    placed, _ = _orders(go, start=100.0)
    root = next(r for r in log.rows if r["span_id"] == placed.span_id)
    log.rows.remove(root)
    log.write(store_layout)
    if consumers_seen_by == "cold-pass":
        engine.cold_pass(now=at(101))
    told = engine.tick(now=at(102))
    for t in (112, 125):  # other orders keep coming: what went quiet leaves memory
        _orders(go, start=t - 1.5)
        log.write(store_layout)
        told += engine.tick(now=at(t))
    held = "SELECT count(*) FROM work_spans WHERE link_trace_id = $t"
    assert engine.con.execute(held, {"t": placed.trace_id}).fetchone() == (0,)

    log.rows = [{**root, "received_at": at(130)}]
    log.write(store_layout)
    new = engine.tick(now=at(131)) + engine.tick(now=at(135))
    engine.write_findings()
    engine.close()

    # told when it was one, the orphan is resolved, and the message is no `dropped`:
    # the publish is judged with its consumers, which the store holds
    assert [a["kind"] for a in told] == ["orphan"] and new == []
    outcome = read_outcome(store_layout)
    assert [(a["kind"], a["resolved_at"] is not None) for a in outcome.anomalies] == [
        ("orphan", True)
    ]
    assert outcome.statuses[placed.trace_id] == ("completed", None, None)
    assert _judged_workflows(store_layout) == set(outcome.statuses)


def _judged_workflows(layout: StoreLayout) -> set[str]:
    """The workflows the status files list (the ``workflows`` view lists those the
    spans make, whatever the verdicts say)."""
    con = correlator.connect(layout.root)
    try:
        return {w for (w,) in con.execute("SELECT workflow_id FROM workflow_status").fetchall()}
    finally:
        con.close()


def test_spans_from_a_collector_whose_clock_runs_behind_are_still_read(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    healthy_run(ours, "wf-ahead", start=100)  # stored by a collector on time
    log.write(store_layout)
    engine = _engine(store_layout)
    engine.cold_pass(now=at(102))

    # a second collector, its clock 30 s behind, stores a run that started at 103
    up_to_parsed(ours, "wf-behind", start=103)
    log.rows = [{**r, "received_at": at(103 - 30)} for r in log.rows]
    log.write(store_layout)
    new = engine.tick(now=at(104)) + engine.tick(now=at(120))
    engine.close()

    assert [(a["kind"], a["workflow_id"]) for a in new] == [("dropped", "wf-behind")]


def test_a_foreign_workflow_is_evicted_whole_not_trace_by_trace(
    store_layout: StoreLayout,
) -> None:
    # links only: the gateway's, billing's and shipping's spans are three traces
    log = SpanLog()
    go = ForeignSpans(log, links_only=True)

    for i in range(6):
        _orders(go, start=float(i))
    log.write(store_layout)
    engine = forgetful_watcher(store_layout)
    engine.cold_pass(now=at(50))
    _, (ship_trace, ship_span) = _orders(go, start=100.0, ship_at=107.0)  # a slow queue
    log.write(store_layout)
    new = []
    for t in (101, 104, 108, 110, 111):  # the gateway's and billing's traces go quiet
        _orders(go, start=t - 1.5)
        log.write(store_layout)
        new += engine.tick(now=at(t))
    # a late span of shipping's trace: its workflow must be judged whole, not as a
    # run that starts at shipping (an orphan, once the grace has passed)
    log.add(trace_id=ship_trace, parent_span_id=ship_span, name="cleanup", kind="internal",
            service_name="shipping", start=107.05, end=111.9)  # fmt: skip
    log.rows[-1]["received_at"] = at(112.0)
    for t in (112, 118, 126, 136):
        _orders(go, start=t - 1.5)
        log.write(store_layout)
        new += engine.tick(now=at(t))
    alone = engine.con.execute(
        "SELECT count(*) FROM all_status WHERE workflow_id = $t", {"t": ship_trace}
    ).fetchone()
    engine.close()

    assert [(a["kind"], a["workflow_id"]) for a in new] == []
    assert alone == (0,)


def test_a_publish_whose_handler_span_came_before_its_processing_span_is_no_deviation(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    log.write(store_layout)
    engine = _engine(store_layout)
    engine.cold_pass(now=at(50))
    first = ours.publish("intake", RECEIVED, workflow_id="wf-own-span", at_s=100)
    processing = ours.process(first, service="parser", start=100.1, end=100.5)
    # the handler publishes inside a span of its own, which ends, and is exported,
    # before the processing span it runs in
    late = [r for r in log.rows if r["span_id"] == processing]
    log.rows = [r for r in log.rows if r["span_id"] != processing]
    own = log.add(trace_id=first.trace_id, parent_span_id=processing, name="parse",
                  kind="internal", service_name="parser", start=100.15, end=100.4)  # fmt: skip
    ours.publish("parser", PARSED, workflow_id="wf-own-span", at_s=100.3,
                 trace_id=first.trace_id, parent_span_id=own["span_id"])  # fmt: skip
    log.write(store_layout)
    before = engine.tick(now=at(100.45))
    log.rows = late
    log.write(store_layout)
    after = engine.tick(now=at(101))
    engine.close()

    assert [(a["kind"], a["workflow_id"]) for a in before + after] == []


def test_a_services_count_of_dropped_spans_stays_current(store_layout: StoreLayout) -> None:
    log = SpanLog()
    history(log, heartbeats_until=None)
    log.heartbeats_every("parser", start=0, stop=60, spans_dropped=17)
    log.write(store_layout)
    engine = _engine(store_layout)
    (gap,) = [a for a in engine.cold_pass(now=at(60)) if a["kind"] == "telemetry_gap"]
    assert "reported 17 spans dropped" in gap["detail"]

    log.heartbeats_every("parser", start=61, stop=90, spans_dropped=40)  # it dropped more
    log.write(store_layout)
    assert engine.tick(now=at(90)) == []  # the same finding: not alerted again
    engine.write_findings()
    engine.close()

    con = correlator.connect(store_layout.root)
    (detail,) = con.execute(
        "SELECT detail FROM anomalies WHERE kind = 'telemetry_gap' AND workflow_id IS NULL"
    ).fetchone()
    assert "reported 40 spans dropped" in detail


def _latest_verdict(
    engine: Correlator, workflow_id: str, *, columns: str = "workflow_type, status"
) -> tuple[str, str]:
    return engine.con.execute(
        f"SELECT {columns} FROM all_status WHERE workflow_id = $wf "
        "ORDER BY judged_in_pass DESC LIMIT 1",
        {"wf": workflow_id},
    ).fetchone()


@pytest.mark.parametrize("request_span_first", [False, True])
def test_a_new_trace_of_a_workflow_memory_let_go_brings_the_rest_back(
    store_layout: StoreLayout, request_span_first: bool
) -> None:
    # the trace context broke at the parser, and its publish (a new trace, the same
    # workflow id) comes after the watcher forgot the first trace
    log = SpanLog()
    ours = history(log, runs=10)
    log.write(store_layout)
    engine = forgetful_watcher(store_layout)
    engine.cold_pass(now=at(50))
    trace, root = log.new_id(32), None
    if request_span_first:  # an app's request span, naming no workflow, exported first
        root = log.add(trace_id=trace, parent_span_id=None, name="POST /applications",
                       kind="server", service_name="gateway", service_instance_id="gw-1",
                       start=99.9, end=99.95)["span_id"]  # fmt: skip
        log.write(store_layout)
        engine.tick(now=at(100))
    first = ours.publish("intake", RECEIVED, workflow_id="wf-split", at_s=100, trace_id=trace,
                         parent_span_id=root)  # fmt: skip
    ours.process(first, service="parser", start=100.1, end=100.4)
    log.write(store_layout)
    engine.tick(now=at(102))
    time_passes(engine, ours, store_layout, at_s=106)
    time_passes(engine, ours, store_layout, at_s=107)  # the first trace leaves memory
    held = "SELECT count(*) FROM work_spans WHERE workflow_id = 'wf-split'"
    assert engine.con.execute(held).fetchone() == (0,)

    parsed = ours.publish("parser", PARSED, workflow_id="wf-split", at_s=110.4)  # new trace
    scored = ours.step(parsed, service="scorer", start=110.5, end=110.8, emits=SCORED)
    ours.process(scored, service="notifier", start=110.9, end=111.0)
    log.write(store_layout)
    engine.tick(now=at(112))

    # judged whole: its type is its first event's, not the second trace's
    assert _latest_verdict(engine, "wf-split") == ("recruit.application.received", "completed")
    engine.close()


def test_a_first_publish_stored_again_after_an_early_eviction_is_no_new_run(
    store_layout: StoreLayout,
) -> None:
    # a collector whose clock runs 30 s behind stored the run: its spans look received
    # long ago, so it leaves memory at once; then a redelivered batch stores its first
    # publish again, stamped by a collector on time
    log = SpanLog()
    ours = history(log, runs=10, heartbeats_until=400)
    log.write(store_layout)
    engine = Correlator(
        data_dir=store_layout.root,
        thresholds=Thresholds(min_deadline_s=5),
        recent_s=10,
        evict_every_ticks=1,
    )
    engine.cold_pass(now=at(50))
    healthy_run(ours, "wf-x", start=100)
    behind = at(30) - at(0)
    for row in log.rows:
        row["received_at"] -= behind
    root_span = dict(next(r for r in log.rows if r["parent_span_id"] is None))
    log.write(store_layout)
    healthy_run(ours, "wf-other", start=101)
    log.write(store_layout)
    engine.tick(now=at(102))
    held = "SELECT count(*) FROM work_spans WHERE workflow_id = 'wf-x'"
    assert engine.con.execute(held).fetchone() == (0,)

    healthy_run(ours, "wf-third", start=103.5)
    log.rows.append({**root_span, "received_at": at(105)})  # the copy
    log.write(store_layout)
    new = [a for t in (106, 110, 125, 140) for a in engine.tick(now=at(t))]

    assert new == []
    assert _latest_verdict(engine, "wf-x") == ("recruit.application.received", "completed")
    engine.close()


def test_a_workflow_held_open_for_an_orphan_is_judged_whole(store_layout: StoreLayout) -> None:
    # two traces (context broke at the parser), and the second's scored publish span
    # never arrives: its notifier span keeps that trace open for the orphan grace
    log = SpanLog()
    ours = history(log, runs=10)
    log.write(store_layout)
    engine = Correlator(data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=5))
    engine.cold_pass(now=at(50))
    first = ours.publish("intake", RECEIVED, workflow_id="wf-split", at_s=100)
    ours.process(first, service="parser", start=100.1, end=100.4)
    parsed = ours.publish("parser", PARSED, workflow_id="wf-split", at_s=100.38)  # new trace
    scored = ours.step(parsed, service="scorer", start=100.5, end=100.8, emits=SCORED)
    ours.process(scored, service="notifier", start=100.9, end=101.0)
    log.rows = [r for r in log.rows if r["span_id"] != scored.span_id]  # never exported
    log.write(store_layout)

    for t in (102, 105, 112):
        engine.tick(now=at(t))
        assert _latest_verdict(engine, "wf-split")[0] == "recruit.application.received", t
    engine.close()


def test_a_watcher_gives_back_the_memory_of_the_spans_it_let_go(
    store_layout: StoreLayout,
) -> None:
    """Days of uptime: memory holds the spans it keeps, not every span it ever held
    (DuckDB keeps a table's deleted rows until the table is copied anew)."""
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    log.write(store_layout)
    engine = forgetful_watcher(store_layout)
    engine.cold_pass(now=at(10))
    for tick in range(24):  # each tick lets go of the 30 runs of the one before
        start = 100.0 + 10 * tick
        for run in range(30):
            healthy_run(ours, f"wf-{tick}-{run}", start=start + run * 0.01)
        log.write(store_layout)
        engine.tick(now=at(start + 8))
    stored, held = engine.con.execute(
        "SELECT estimated_size, (SELECT count(*) FROM work_spans) FROM duckdb_tables() "
        "WHERE database_name = 'temp' AND table_name = 'work_spans'"
    ).fetchone()
    engine.close()

    assert held < 1_000 < 24 * 30 * 7  # it let go of most of what it held
    assert stored < 2_500  # and does not keep their rows (a copy at 2,000)


def test_a_watcher_lets_go_of_what_retention_dropped_from_the_store(
    store_layout: StoreLayout,
) -> None:
    # runs four hours old, in their own hour partition, which retention then drops:
    # the watcher's verdicts of them and its memory of their ids go too (both grew
    # with every run the store ever held)
    log = SpanLog()
    for i in range(5):
        healthy_run(OurSpans(log), f"wf-old-{i}", start=-4 * 3600 + i)
    old, log.rows = log.rows, []  # one log: ids unique across both writes
    writer = SegmentWriter(layout=store_layout)
    writer.write("spans", pa.Table.from_pylist(old, schema=SPANS), at=at(-4 * 3600))
    writer.close()
    ours = history(log, heartbeats_until=None)
    log.write(store_layout)
    engine = forgetful_watcher(store_layout)
    engine.cold_pass(now=at(10))
    judged_before = _judged(engine)
    traces_before = len(engine.memory._stored.traces)

    shutil.rmtree(store_layout.partition_dir("spans", at(-4 * 3600)))  # retention
    time_passes(engine, ours, store_layout, at_s=100)
    time_passes(engine, ours, store_layout, at_s=110)
    judged_after = _judged(engine)
    traces_after = len(engine.memory._stored.traces)
    engine.close()

    assert {f"wf-old-{i}" for i in range(5)} <= judged_before
    assert not any(w.startswith("wf-old-") for w in judged_after)
    assert "wf-0" in judged_after  # the runs still stored keep theirs
    assert traces_after == traces_before - 5 + 2  # the old runs' out, the two new in


def _judged(engine: Correlator) -> set[str]:
    return {w for (w,) in engine.con.execute("SELECT workflow_id FROM all_status").fetchall()}
