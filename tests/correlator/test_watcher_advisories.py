"""correlate --watch keeps the JetStream advisories it needs, not every one it read:
over days, advisories of workflows it let go no longer pile up in memory, while a
dead letter of a workflow it still holds, or brings back, stays one."""

from __future__ import annotations

from typing import Any

from correlator.engine import Correlator
from store import StoreLayout
from tests.correlator.pipelines import (
    PARSED,
    forgetful_watcher,
    history,
    read_outcome,
    time_passes,
    up_to_parsed,
)
from tests.correlator.span_shapes import OurSpans, SpanLog, at

ADVISORY_KEEP_S = 50.0  # a watcher keeps signals for at least an hour: shortened here


def _dead_lettered_then_watched(
    layout: StoreLayout,
) -> tuple[SpanLog, OurSpans, Correlator, dict[str, Any]]:
    """wf-dlq: its `recruit.cv.parsed` failed three times, then JetStream's
    max_deliveries advisory (t=104); a watcher's cold pass at t=110 reports it
    dead-lettered. Returns the row of wf-dlq's first publish span too."""
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    parsed = up_to_parsed(ours, "wf-dlq", start=100)
    for attempt in range(3):
        t = 101 + attempt
        ours.process(parsed, service="scorer", start=t, end=t + 0.1, error="ValueError: bad cv",
                     settle="nak")  # fmt: skip
    log.bus_event("max_deliveries", parsed, at_s=104, consumer="scorer")
    root = next(row for row in log.rows if row["parent_span_id"] is None and
                row["workflow_id"] == "wf-dlq")  # fmt: skip
    log.write(layout)
    engine = forgetful_watcher(layout)
    engine.signals.keep_s = ADVISORY_KEEP_S
    assert [a["kind"] for a in engine.cold_pass(now=at(110))] == ["dead_lettered"]
    return log, ours, engine, root


def _advisories_held(engine: Correlator) -> int:
    (count,) = engine.con.execute("SELECT count(*) FROM bus_events").fetchone()
    return count


def _held(engine: Correlator, workflow_id: str) -> bool:
    (count,) = engine.con.execute(
        "SELECT count(*) FROM work_spans WHERE workflow_id = ?", [workflow_id]
    ).fetchone()
    return count > 0


def test_a_watcher_lets_go_of_the_advisories_of_workflows_it_let_go(
    store_layout: StoreLayout,
) -> None:
    _, ours, engine, _ = _dead_lettered_then_watched(store_layout)

    # past the advisories' age, the stalled run is still held (open for keep_s, 15
    # min): its advisory stays, and so does its dead letter
    time_passes(engine, ours, store_layout, at_s=200)
    held_at_200 = _held(engine, "wf-dlq"), _advisories_held(engine)
    engine.write_findings()
    still_dead_lettered = read_outcome(store_layout).statuses["wf-dlq"]
    # once the run leaves memory, its advisory goes too
    time_passes(engine, ours, store_layout, at_s=1200)
    held_at_1200 = _held(engine, "wf-dlq"), _advisories_held(engine)
    engine.close()

    assert held_at_200 == (True, 1)
    assert still_dead_lettered[0::2] == ("stalled", "dead_lettered")
    assert held_at_1200 == (False, 0)


def test_a_dead_letter_brought_back_from_the_store_is_still_a_dead_letter(
    store_layout: StoreLayout,
) -> None:
    log, ours, engine, root = _dead_lettered_then_watched(store_layout)
    time_passes(engine, ours, store_layout, at_s=1200)
    assert (_held(engine, "wf-dlq"), _advisories_held(engine)) == (False, 0)

    # the batch that held wf-dlq's first publish, ingested again much later (a
    # collector restarted before it acked) brings the run back from the store
    log.rows = [{**root, "received_at": at(1300)}]
    log.write(store_layout)
    new = engine.tick(now=at(1301))
    brought_back = _held(engine, "wf-dlq"), _advisories_held(engine)
    engine.write_findings()
    engine.close()

    assert brought_back == (True, 1)
    assert new == []
    outcome = read_outcome(store_layout)
    assert outcome.statuses["wf-dlq"][0::2] == ("stalled", "dead_lettered")
    assert [
        (a["kind"], a["subject"]) for a in outcome.anomalies if a["workflow_id"] == "wf-dlq"
    ] == [("dead_lettered", PARSED)]
