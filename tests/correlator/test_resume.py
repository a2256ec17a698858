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
from tests.correlator.pipelines import PARSED, RECEIVED, SCORED, healthy_run, history
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
    log.write(store_layout, filed_at=at(HOURS_AGO))
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


def test_a_model_learned_again_beside_the_ticks_learns_from_the_newest_hours(
    resumed: Resumed,
) -> None:
    (resumed.layout.findings / "last_pass.json").unlink()  # a first pass: every span
    engine = Correlator(
        data_dir=resumed.layout.root, thresholds=THRESHOLDS, model_refresh_s=0, learn_spans=50
    )
    engine.cold_pass(now=at(60))
    learned_first = {t["workflow_type"]: t["workflows"] for t in engine.model.types}
    engine.tick(now=at(61))  # begins learning again
    engine.refresh.wait()
    engine.tick(now=at(62))  # takes it in
    learned_again = {t["workflow_type"]: t["workflows"] for t in engine.model.types}
    engine.close()

    # every run, then only those of the newest hour (its 80 spans are over 50): the
    # recent runs, wf-long and the foreign run, whose older spans came with them
    # (cut at the hour, each would be a run of another type, after its first event
    # in the hour)
    assert learned_first == {RECEIVED: 19}
    assert learned_again == {RECEIVED: 10}
