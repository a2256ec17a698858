"""A recruitment pipeline written as spans, healthy or with one fault, and a helper
that correlates a store as of a chosen instant."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import correlator
from correlator.declared_choreography import Choreography
from correlator.engine import Correlator
from correlator.thresholds import Thresholds
from store import StoreLayout
from tests.correlator.span_shapes import OurSpans, Published, SpanLog, at

RECEIVED = "recruit.application.received"
PARSED = "recruit.cv.parsed"
SCORED = "recruit.candidate.scored"
SERVICES = ("intake", "parser", "scorer", "notifier")


def healthy_run(ours: OurSpans, workflow_id: str, *, start: float) -> None:
    """intake → parser → scorer → notifier, every step done within a second."""
    first = ours.publish("intake", RECEIVED, workflow_id=workflow_id, at_s=start)
    parsed = ours.step(first, service="parser", start=start + 0.1, end=start + 0.4, emits=PARSED)
    scored = ours.step(parsed, service="scorer", start=start + 0.5, end=start + 0.8, emits=SCORED)
    ours.process(scored, service="notifier", start=start + 0.9, end=start + 1.0)


def up_to_parsed(ours: OurSpans, workflow_id: str, *, start: float) -> Published:
    """The first two steps; returns the `recruit.cv.parsed` message, not yet consumed."""
    first = ours.publish("intake", RECEIVED, workflow_id=workflow_id, at_s=start)
    return ours.step(first, service="parser", start=start + 0.1, end=start + 0.4, emits=PARSED)


def up_to_scored(ours: OurSpans, workflow_id: str, *, start: float) -> Published:
    """The first three steps; returns the `recruit.candidate.scored` message, not yet
    consumed."""
    parsed = up_to_parsed(ours, workflow_id, start=start)
    return ours.step(parsed, service="scorer", start=start + 0.5, end=start + 0.8, emits=SCORED)


def forgetful_watcher(layout: StoreLayout) -> Correlator:
    """A watcher that forgets a quiet trace fast: 5 s after its last span, at any tick."""
    return Correlator(
        data_dir=layout.root,
        thresholds=Thresholds(min_deadline_s=5),
        recent_s=5,
        evict_every_ticks=1,
    )


def time_passes(engine: Correlator, ours: OurSpans, layout: StoreLayout, *, at_s: float) -> None:
    """A healthy run at ``at_s``, then a tick: what went quiet before it leaves memory."""
    healthy_run(ours, "wf-next", start=at_s)
    ours.log.write(layout)
    engine.tick(now=at(at_s + 2))


def history(log: SpanLog, *, runs: int = 8, heartbeats_until: float | None = 200.0) -> OurSpans:
    """``runs`` healthy workflows (wf-0 …) starting at t=0, one a second, and every
    service heartbeating once a second until ``heartbeats_until`` (None: services
    that never heartbeat, like other instrumentations')."""
    ours = OurSpans(log)
    for i in range(runs):
        healthy_run(ours, f"wf-{i}", start=float(i))
    for service in SERVICES if heartbeats_until is not None else ():
        log.heartbeats_every(service, start=0.0, stop=heartbeats_until)
    return ours


def the_others_beat(log: SpanLog, *, start: float = 1, stop: float = 200, **kw: Any) -> None:
    """Every service but the scorer heartbeating from ``start`` to ``stop`` (the tests
    give the scorer beats of its own)."""
    for service in SERVICES:
        if service != "scorer":
            log.heartbeats_every(service, start=start, stop=stop, **kw)


def lost_while_the_scorer_was_down(layout: StoreLayout) -> None:
    """History, then the scorer stops at 95 s and is back at 110 s; wf-lost's message,
    published at 100 s, never reaches it."""
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    the_others_beat(log)
    log.heartbeats_every("scorer", start=1, stop=95)
    log.heartbeats_every("scorer", start=110, stop=200)
    up_to_parsed(ours, "wf-lost", start=100)
    log.write(layout)


@dataclass
class Outcome:
    anomalies: list[dict[str, Any]]
    statuses: dict[str, tuple[str, str | None, str | None]]

    def kinds(self) -> set[tuple[str, str | None, str | None]]:
        """``(kind, workflow_id, step)`` of each open anomaly about a workflow."""
        return {
            (a["kind"], a["workflow_id"], a["step"])
            for a in self.anomalies
            if a["workflow_id"] is not None and a["resolved_at"] is None
        }

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [a for a in self.anomalies if a["kind"] == kind]


def correlate(
    layout: StoreLayout,
    *,
    now_s: float,
    choreography: Choreography | None = None,
    **thresholds: Any,
) -> Outcome:
    """A cold pass as of ``T0 + now_s``, read back through the public views."""
    thresholds.setdefault("min_deadline_s", 5.0)
    engine = Correlator(
        data_dir=layout.root, thresholds=Thresholds(**thresholds), choreography=choreography
    )
    try:
        engine.cold_pass(now=at(now_s))
        engine.write_findings()
    finally:
        engine.close()
    return read_outcome(layout)


def read_outcome(layout: StoreLayout) -> Outcome:
    con = correlator.connect(layout.root)
    try:
        result = con.execute("SELECT * FROM anomalies ORDER BY kind, workflow_id")
        names = [d[0] for d in result.description]
        anomalies = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        statuses = {
            wf: (status, waiting_on, root_cause)
            for wf, status, waiting_on, root_cause in con.execute(
                "SELECT workflow_id, status, waiting_on, root_cause FROM workflows"
            ).fetchall()
        }
    finally:
        con.close()
    return Outcome(anomalies=anomalies, statuses=statuses)


def seconds(value: float) -> dt.timedelta:
    return dt.timedelta(seconds=value)
