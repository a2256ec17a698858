"""A cold pass after an earlier one (a watcher restarted, ``correlate --once`` run
again) judges only the recent hours: the workflows quiet since keep their verdicts
and their anomalies, and a workflow that began in an older hour is judged whole."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import pytest

import correlator
from correlator.engine import Correlator
from correlator.thresholds import Thresholds
from correlator.watch import correlate_once
from store import StoreLayout
from tests.correlator.pipelines import (
    PARSED,
    RECEIVED,
    SCORED,
    healthy_run,
    history,
    up_to_parsed,
)
from tests.correlator.span_shapes import ForeignSpans, OurSpans, Published, SpanLog, at

HOURS_AGO = -5 * 3600.0  # the older history, filed in an hour partition of its own
FIRST_PASS = at(-600)  # the earlier pass: after the older history, before the recent
THRESHOLDS = Thresholds(min_deadline_s=5)


def _statuses(layout: StoreLayout) -> dict[str, tuple[str, dt.datetime]]:
    con = correlator.connect(layout.root)
    try:
        rows = con.execute("SELECT workflow_id, status, evaluated_at FROM workflow_status")
        return {wf: (status, evaluated_at) for wf, status, evaluated_at in rows.fetchall()}
    finally:
        con.close()


def _open_anomalies(layout: StoreLayout) -> set[tuple[str, str]]:
    con = correlator.connect(layout.root)
    try:
        rows = con.execute(
            "SELECT kind, workflow_id FROM anomalies WHERE resolved_at IS NULL"
        ).fetchall()
        return set(rows)
    finally:
        con.close()


@dataclass
class Resumed:
    layout: StoreLayout
    ours: OurSpans  # spans of the same store (its ids go on)
    lost: Published  # wf-old-drop's `recruit.cv.parsed`, never consumed
    foreign: str  # the run of another instrumentation that began five hours ago


@pytest.fixture
def resumed(store_layout: StoreLayout) -> Resumed:
    """Five hours ago (filed in that hour's partition): healthy runs, wf-old-drop,
    whose `recruit.cv.parsed` is never consumed, and the first message of wf-long.
    A first pass judges them; then come recent healthy runs and the rest of wf-long:
    its first message, consumed at last."""
    log = SpanLog()
    ours = OurSpans(log)
    for i in range(8):
        healthy_run(ours, f"wf-old-{i}", start=HOURS_AGO + i)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-old-drop", at_s=HOURS_AGO + 20)
    lost = ours.step(
        first, service="parser", start=HOURS_AGO + 20.1, end=HOURS_AGO + 20.4, emits=PARSED
    )
    waiting = ours.publish("intake", RECEIVED, workflow_id="wf-long", at_s=HOURS_AGO + 30)
    # another instrumentation's: no workflow ids, a trace per consumer, linked back
    go = ForeignSpans(log, links_only=True)
    foreign = go.publish("intake", RECEIVED, at_s=HOURS_AGO + 40)
    log.write(store_layout, filed_at=at(HOURS_AGO), written_at=at(HOURS_AGO + 60))
    correlate_once(data_dir=store_layout.root, thresholds=THRESHOLDS, now=FIRST_PASS)
    assert {("dropped", "wf-old-drop"), ("dropped", "wf-long")} <= _open_anomalies(store_layout)

    history(log, heartbeats_until=None)
    parsed = ours.step(waiting, service="parser", start=10.0, end=10.3, emits=PARSED)
    scored = ours.step(parsed, service="scorer", start=10.4, end=10.7, emits=SCORED)
    ours.process(scored, service="notifier", start=10.8, end=10.9)
    parsed = go.step(foreign, service="parser", start=20.0, end=20.3, emits=PARSED)
    scored = go.step(parsed, service="scorer", start=20.4, end=20.7, emits=SCORED)
    go.process(scored, service="notifier", start=20.8, end=20.9)
    log.write(store_layout)
    return Resumed(layout=store_layout, ours=ours, lost=lost, foreign=foreign.trace_id)


def test_a_second_pass_judges_only_recent_hours_and_older_runs_keep_their_verdicts(
    resumed: Resumed, caplog: pytest.LogCaptureFixture
) -> None:
    engine = Correlator(data_dir=resumed.layout.root, thresholds=THRESHOLDS)
    with caplog.at_level(logging.INFO, logger="correlator.engine"):
        new = engine.cold_pass(now=at(60), hold=False)
    engine.write_findings()
    engine.close()
    statuses = _statuses(resumed.layout)

    assert "resumed from the last pass" in caplog.text
    # the older runs were not judged again: they keep the first pass's verdicts
    assert statuses["wf-old-drop"] == ("stalled", FIRST_PASS)
    assert statuses["wf-old-3"] == ("completed", FIRST_PASS)
    # the recent runs were judged now
    assert statuses["wf-0"] == ("completed", at(60))
    # what the first pass found stands, and is not new to the second
    assert ("dropped", "wf-old-drop") in _open_anomalies(resumed.layout)
    assert [a["workflow_id"] for a in new] == []


def test_a_run_that_began_before_the_hours_judged_again_is_judged_whole(
    resumed: Resumed,
) -> None:
    correlate_once(data_dir=resumed.layout.root, thresholds=THRESHOLDS, now=at(60))

    # judged on its recent spans alone, its consumer would point at a publish
    # never seen (an orphan), and its first message would still look dropped
    assert _statuses(resumed.layout)["wf-long"] == ("completed", at(60))
    assert {a for a in _open_anomalies(resumed.layout) if a[1] == "wf-long"} == set()


def test_a_run_of_another_instrumentation_is_followed_back_through_its_span_links(
    resumed: Resumed,
) -> None:
    correlate_once(data_dir=resumed.layout.root, thresholds=THRESHOLDS, now=at(60))

    # its recent traces link back to the publish of five hours ago, whose trace
    # names the run: judged without it, they would be a run of their own, with a
    # consumer pointing at a publish never seen
    statuses = _statuses(resumed.layout)
    assert statuses[resumed.foreign] == ("completed", at(60))
    assert {a for a in _open_anomalies(resumed.layout) if a[1] == resumed.foreign} == set()


def test_other_settings_judge_every_run_again(resumed: Resumed) -> None:
    correlate_once(
        data_dir=resumed.layout.root, thresholds=Thresholds(min_deadline_s=6), now=at(60)
    )

    assert _statuses(resumed.layout)["wf-old-3"] == ("completed", at(60))


def test_a_watcher_resumed_brings_back_an_older_run_a_late_span_continues(
    resumed: Resumed,
) -> None:
    # wf-old-drop's message, lost five hours ago, is consumed after all
    engine = Correlator(data_dir=resumed.layout.root, thresholds=THRESHOLDS)
    engine.cold_pass(now=at(60))
    ours = resumed.ours
    scored = ours.step(resumed.lost, service="scorer", start=70.0, end=70.3, emits=SCORED)
    ours.process(scored, service="notifier", start=70.4, end=70.5)
    ours.log.write(resumed.layout)
    engine.tick(now=at(72))
    engine.tick(now=at(90))  # past the orphan grace
    engine.write_findings()
    engine.close()

    assert _statuses(resumed.layout)["wf-old-drop"] == ("completed", at(72))
    # judged without its older spans, the scorer's would point at a publish never
    # seen (an orphan)
    assert {a for a in _open_anomalies(resumed.layout) if a[1] == "wf-old-drop"} == set()


@pytest.mark.parametrize("watching", [False, True], ids=["once", "watcher"])
def test_a_resumed_pass_judges_with_the_model_of_the_whole_store_not_of_its_hours(
    store_layout: StoreLayout, watching: bool
) -> None:
    """The scorer stopped before the hours judged again: the runs since wait on it. A
    model learned from those hours alone would not know the scorer consumes
    `recruit.cv.parsed`, and would call them completed. A watcher goes on with the
    model of the last pass; --once learns it again from every span."""
    log = SpanLog()
    ours = OurSpans(log)
    for i in range(8):
        healthy_run(ours, f"wf-old-{i}", start=HOURS_AGO + i)
    log.write(store_layout, filed_at=at(HOURS_AGO), written_at=at(HOURS_AGO + 60))
    correlate_once(data_dir=store_layout.root, thresholds=THRESHOLDS, now=FIRST_PASS)
    for i in range(8):
        up_to_parsed(ours, f"wf-{i}", start=float(i))
    log.write(store_layout)

    engine = Correlator(data_dir=store_layout.root, thresholds=THRESHOLDS)
    engine.cold_pass(now=at(120), hold=watching)
    engine.write_findings()
    engine.close()

    statuses = _statuses(store_layout)
    assert {statuses[f"wf-{i}"][0] for i in range(8)} == {"stalled"}
    assert ("dropped", "wf-0") in _open_anomalies(store_layout)


def test_a_model_learned_again_still_expects_a_consumer_down_for_the_newest_hours(
    store_layout: StoreLayout,
) -> None:
    """The scorer stopped hours ago: a model learned again beside the ticks still
    expects it (learned from the newest hours alone, it would not), so the runs
    waiting on it stay stalled, and new ones are stalled too."""
    log = SpanLog()
    ours = OurSpans(log)
    for i in range(8):
        healthy_run(ours, f"wf-old-{i}", start=HOURS_AGO + i)
    log.write(store_layout, filed_at=at(HOURS_AGO), written_at=at(HOURS_AGO + 60))
    engine = Correlator(data_dir=store_layout.root, thresholds=THRESHOLDS, model_refresh_s=0)
    engine.cold_pass(now=FIRST_PASS)
    for i in range(8):
        up_to_parsed(ours, f"wf-{i}", start=float(i))
    log.write(store_layout)
    engine.tick(now=at(10))  # begins learning again
    engine.refresh.wait()
    engine.tick(now=at(11))  # takes it in
    for i in range(8, 12):
        up_to_parsed(ours, f"wf-{i}", start=20.0 + i)
    log.write(store_layout)
    engine.tick(now=at(40))
    engine.tick(now=at(120))
    engine.write_findings()
    engine.close()

    statuses = _statuses(store_layout)
    assert {statuses[f"wf-{i}"][0] for i in range(12)} == {"stalled"}


def test_a_consumer_span_still_within_its_orphan_grace_at_the_last_pass_is_judged_again(
    store_layout: StoreLayout,
) -> None:
    """With a 2 h orphan grace, a consumer span of 90 min before the first pass whose
    publish never came is no orphan yet then; a running watcher keeps it open for
    twice the grace, and finds the orphan once the grace has passed. So must a
    resumed pass, though its hour is older than keep before the first pass."""
    thresholds = Thresholds(min_deadline_s=5, orphan_grace_s=7200)
    log = SpanLog()
    ours = OurSpans(log)
    parsed = up_to_parsed(ours, "wf-orphan", start=-5400)
    log.rows = [r for r in log.rows if r["span_id"] != parsed.span_id]  # never arrives
    ours.process(parsed, service="scorer", start=-5399.5, end=-5399.2)
    log.write(store_layout, filed_at=at(-5400), written_at=at(-5300))
    correlate_once(data_dir=store_layout.root, thresholds=thresholds, now=FIRST_PASS)
    assert ("orphan", "wf-orphan") not in _open_anomalies(store_layout)
    history(log, heartbeats_until=None)
    log.write(store_layout)

    correlate_once(data_dir=store_layout.root, thresholds=thresholds, now=at(3600))

    assert ("orphan", "wf-orphan") in _open_anomalies(store_layout)


def test_spans_filed_by_a_collector_whose_clock_runs_behind_are_judged_after_a_restart(
    store_layout: StoreLayout,
) -> None:
    """The correlator's clock runs two hours ahead of the collector's, which files the
    spans it receives in the hour partitions of its own clock: those received after
    the last pass are in an hour older than the hours judged again. They are judged
    because their segment was written after it (the file system's clock)."""
    log = SpanLog()
    ours = OurSpans(log)
    for i in range(8):
        healthy_run(ours, f"wf-old-{i}", start=HOURS_AGO + i)
    log.write(store_layout, filed_at=at(HOURS_AGO), written_at=at(HOURS_AGO + 60))
    history(log, heartbeats_until=None)
    log.write(store_layout, written_at=at(60))
    correlate_once(data_dir=store_layout.root, thresholds=THRESHOLDS, now=at(7200))
    up_to_parsed(ours, "wf-late", start=30.0)  # `recruit.cv.parsed` consumed by nobody
    log.write(store_layout)

    correlate_once(data_dir=store_layout.root, thresholds=THRESHOLDS, now=at(7300))

    assert _statuses(store_layout)["wf-late"] == ("stalled", at(7300))
