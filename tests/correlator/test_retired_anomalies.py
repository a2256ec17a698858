"""Anomalies leave with their workflow's spans: once retention dropped every span of
a run, ``anomalies`` no longer lists it, and spans of it that come back (a late
copy) are never alerted again, nor is anything retired after a restart. A service's
outage leaves once it ended before the oldest hour the store holds."""

from __future__ import annotations

import asyncio
import datetime as dt

import correlator
from collector.retention import drop_expired_partitions
from correlator.alerts import Alerter
from correlator.engine import Correlator
from correlator.findings import read_findings
from correlator.seen_keys import hour_of
from correlator.thresholds import Thresholds
from correlator.watch import watch
from store import StoreLayout
from tests.correlator.pipelines import (
    PARSED,
    SERVICES,
    correlate,
    healthy_run,
    history,
    up_to_parsed,
)
from tests.correlator.span_shapes import T0, OurSpans, SpanLog, at

LATER = 3 * 3600.0  # three hours on: the first hour is past a retention of one


def _a_failed_step_at_the_start(layout: StoreLayout) -> SpanLog:
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-old", start=100)
    ours.process(parsed, service="scorer", start=101, end=101.1, error="boom", settle=None)
    log.write(layout)
    return log


def _healthy_runs_and_a_dropped_message_later(layout: StoreLayout) -> None:
    log = SpanLog()
    ours = OurSpans(log)
    for i in range(8):
        healthy_run(ours, f"wf-later-{i}", start=LATER + i)
    up_to_parsed(ours, "wf-new", start=LATER + 100)
    for service in SERVICES:
        log.heartbeats_every(service, start=LATER, stop=LATER + 200)
    log.write(layout, filed_at=T0 + dt.timedelta(seconds=LATER))


def _expire_the_first_hour(layout: StoreLayout) -> None:
    assert drop_expired_partitions(layout, retention=3600, now=at(LATER))


def _anomalies_of(layout: StoreLayout) -> dict[str, int]:
    con = correlator.connect(layout.root)
    try:
        rows = con.execute(
            "SELECT workflow_id, count(*) FROM anomalies GROUP BY workflow_id"
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def test_anomalies_of_a_workflow_retention_dropped_are_no_longer_listed(
    store_layout: StoreLayout,
) -> None:
    _a_failed_step_at_the_start(store_layout)
    assert correlate(store_layout, now_s=160).kinds() == {("failed", "wf-old", PARSED)}
    _healthy_runs_and_a_dropped_message_later(store_layout)
    _expire_the_first_hour(store_layout)

    correlate(store_layout, now_s=LATER + 160)

    # the open anomaly of a run the store still holds is kept
    assert _anomalies_of(store_layout) == {"wf-new": 1}


async def _watch(layout: StoreLayout, alerted: list[str], *, now_s: float) -> None:
    """A watcher's life: its cold pass, a few ticks, then a stop."""

    async def publish(subject: str, payload: bytes, *, msg_id: str) -> None:
        alerted.append(msg_id)

    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        watch(
            data_dir=layout.root,
            alerter=Alerter(publish=publish, dashboard_url="http://127.0.0.1:8501"),
            stop=stop,
            thresholds=Thresholds(min_deadline_s=5),
            interval_s=0.05,
            clock=lambda: at(now_s),
            ready=ready,
        )
    )
    await asyncio.wait_for(ready.wait(), timeout=60)
    await asyncio.sleep(0.5)
    stop.set()
    await task


async def test_a_retired_anomaly_is_not_alerted_again_when_its_spans_come_back(
    store_layout: StoreLayout,
) -> None:
    alerted: list[str] = []
    _a_failed_step_at_the_start(store_layout)
    await _watch(store_layout, alerted, now_s=160)
    assert len(alerted) == 1  # wf-old's failed step
    _healthy_runs_and_a_dropped_message_later(store_layout)
    _expire_the_first_hour(store_layout)

    await _watch(store_layout, alerted, now_s=LATER + 160)  # a restart, hours later
    assert _anomalies_of(store_layout) == {"wf-new": 1}
    assert len(alerted) == 2  # and wf-new's

    # the same after another restart: nothing retired is told again
    await _watch(store_layout, alerted, now_s=LATER + 170)
    assert len(alerted) == 2


def test_spans_of_a_retired_workflow_that_come_back_are_not_new_anomalies(
    store_layout: StoreLayout,
) -> None:
    # wf-old's anomalies were retired (as retention would), and its spans are in the
    # store again (a late copy): a restarted correlator finds them again, as told
    _a_failed_step_at_the_start(store_layout)
    engine = Correlator(data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=5))
    try:
        assert [a["workflow_id"] for a in engine.cold_pass(now=at(160), hold=False)] == ["wf-old"]
        engine.ledger.retire({"wf-old"}, at=at(LATER))
        engine.write_findings()
    finally:
        engine.close()
    assert _anomalies_of(store_layout) == {}

    again = Correlator(data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=5))
    try:
        assert again.cold_pass(now=at(170), hold=False) == []
        assert again.ledger.unalerted() == []
    finally:
        again.close()


def _service_level(layout: StoreLayout) -> list[tuple[str, str, bool]]:
    """(service, root cause, open) of each service-level anomaly listed."""
    con = correlator.connect(layout.root)
    try:
        rows = con.execute(
            """
            SELECT service, root_cause, resolved_at IS NULL FROM anomalies
            WHERE workflow_id IS NULL ORDER BY service
            """
        ).fetchall()
    finally:
        con.close()
    return [tuple(row) for row in rows]


def test_a_service_outage_over_before_what_retention_keeps_is_no_longer_listed(
    store_layout: StoreLayout,
) -> None:
    # in the first hour, `mailer` goes silent and `indexer`'s exporter drops spans
    log = SpanLog()
    log.heartbeats_every("mailer", start=1, stop=50)
    log.heartbeats_every("indexer", start=1, stop=200, spans_dropped=3)
    log.write(store_layout)
    correlate(store_layout, now_s=160)
    assert _service_level(store_layout) == [
        ("indexer", "spans_dropped", True),
        ("mailer", "service_silent", True),
    ]
    # past the silent horizon, mailer's episode is over (resolved within the first
    # hours); indexer keeps beating with its dropped spans, into the hours kept
    correlate(store_layout, now_s=5400)
    assert ("mailer", "service_silent", False) in _service_level(store_layout)
    _healthy_runs_and_a_dropped_message_later(store_layout)
    log.heartbeats_every("indexer", start=LATER, stop=LATER + 200, spans_dropped=3)
    log.write(store_layout, filed_at=T0 + dt.timedelta(seconds=LATER))
    _expire_the_first_hour(store_layout)

    correlate(store_layout, now_s=LATER + 160)

    # the outage over before the oldest hour kept is gone; the gap still happening,
    # though found hours ago, is still listed
    assert _service_level(store_layout) == [("indexer", "spans_dropped", True)]
    assert _anomalies_of(store_layout) == {"wf-new": 1, None: 1}


HOUR = 3600.0


def _retired_in_hours(layout: StoreLayout) -> list[int]:
    """The hour (from T0) each workflow the retired file remembers was retired in."""
    table = read_findings(layout, "anomalies_retired")
    assert table is not None
    return sorted(h - hour_of(T0) for h in table["retired_hour"].to_pylist())


def _wf_old_retired_in_hour_three(layout: StoreLayout) -> None:
    """wf-old failed in the first hour, which retention dropped; the pass at hour 3
    retired it."""
    _a_failed_step_at_the_start(layout)
    correlate(layout, now_s=160)
    _healthy_runs_and_a_dropped_message_later(layout)
    _expire_the_first_hour(layout)
    correlate(layout, now_s=LATER + 160)
    assert _retired_in_hours(layout) == [3]


def _hours_go_by(layout: StoreLayout, *, until_s: float) -> None:
    """A healthy run filed in the hour of ``until_s``, and retention of an hour done."""
    log = SpanLog()
    healthy_run(OurSpans(log), f"wf-at-{until_s:.0f}", start=until_s - 100)
    log.write(layout, filed_at=at(until_s - 100))
    drop_expired_partitions(layout, retention=3600, now=at(until_s))


def test_a_retired_workflow_is_forgotten_once_no_copy_of_its_spans_can_arrive(
    store_layout: StoreLayout,
) -> None:
    _wf_old_retired_in_hour_three(store_layout)
    # a day on, the store no longer holds the hour wf-old was retired in, but the
    # spans stream may still hold a copy of its spans (it keeps them a day)
    _hours_go_by(store_layout, until_s=20 * HOUR)
    correlate(store_layout, now_s=20 * HOUR)
    assert _retired_in_hours(store_layout) == [3, 20]  # and wf-new, retired now
    # past both, no copy of wf-old's spans can arrive: the file lets it go
    _hours_go_by(store_layout, until_s=30 * HOUR)
    correlate(store_layout, now_s=30 * HOUR)
    assert _retired_in_hours(store_layout) == [20]


async def test_a_late_copy_within_the_bound_is_not_alerted_again(
    store_layout: StoreLayout,
) -> None:
    alerted: list[str] = []
    _a_failed_step_at_the_start(store_layout)
    await _watch(store_layout, alerted, now_s=160)
    told = list(alerted)  # wf-old's failed step
    _healthy_runs_and_a_dropped_message_later(store_layout)
    _expire_the_first_hour(store_layout)
    correlate(store_layout, now_s=LATER + 160)  # wf-old retired in hour 3
    _hours_go_by(store_layout, until_s=20 * HOUR)
    correlate(store_layout, now_s=20 * HOUR)  # the retention horizon is past hour 3

    # a copy of wf-old's spans the spans stream held reaches the store now
    late = SpanLog()
    parsed = up_to_parsed(history(late, heartbeats_until=None), "wf-old", start=100)
    OurSpans(late).process(parsed, service="scorer", start=101, end=101.1, error="boom")
    late.write(store_layout, filed_at=at(20 * HOUR))
    await _watch(store_layout, alerted, now_s=20 * HOUR + 60)

    assert "wf-old" in _anomalies_of(store_layout)  # judged again,
    assert alerted == told  # and not told again


def test_a_watcher_retires_the_dropped_spans_of_an_instance_that_stopped_as_a_cold_pass_does(
    store_layout: StoreLayout,
) -> None:
    # in the first hour `indexer`'s exporter drops spans, then the instance stops for
    # good (its last beat says nothing: it was killed, or scaled away)
    log = SpanLog()
    log.heartbeats_every("indexer", start=1, stop=200, spans_dropped=3)
    _a_failed_step_at_the_start(store_layout)
    log.write(store_layout)
    engine = Correlator(
        data_dir=store_layout.root,
        thresholds=Thresholds(min_deadline_s=5),
        evict_every_ticks=1,  # every tick retires what retention took
        status_rewrite_s=0,  # every write rewrites the full file, retired rows left out
    )
    try:
        engine.cold_pass(now=at(160))
        engine.write_findings()
        assert ("indexer", "spans_dropped", True) in _service_level(store_layout)

        # hours on, retention dropped the first hour, indexer's beats with it: the
        # store no longer holds any sign of it
        _healthy_runs_and_a_dropped_message_later(store_layout)
        _expire_the_first_hour(store_layout)
        engine.tick(now=at(LATER + 160))
        engine.write_findings()
        # as a cold pass of this store says: its gap is over, not open for ever
        assert ("indexer", "spans_dropped", False) in _service_level(store_layout)

        # and once retention's horizon passed that, it is no longer listed
        _hours_go_by(store_layout, until_s=LATER + 3 * HOUR)
        for now_s in (LATER + 3 * HOUR, LATER + 3 * HOUR + 1):
            engine.tick(now=at(now_s))
        engine.write_findings()
        assert [s for s in _service_level(store_layout) if s[0] == "indexer"] == []
    finally:
        engine.close()
