"""A dead letter told before the spans of its last attempt arrived: JetStream's
`terminated` advisory reaches the collector at once, while the failed attempt's spans
wait in their exporter's batch. Once they arrive, the anomaly says what the store
shows (five failed attempts, not four), and is not alerted a second time."""

from __future__ import annotations

import orjson

from correlator.engine import Correlator
from correlator.thresholds import Thresholds
from instrumentation.wire import durable_name
from store import StoreLayout
from tests.correlator.pipelines import PARSED, history, read_outcome, up_to_parsed
from tests.correlator.span_shapes import SpanLog, at


def test_a_dead_letter_explained_before_its_last_attempt_arrived_counts_it_once_it_has(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log, heartbeats_until=400)
    parsed = up_to_parsed(ours, "wf-dlq", start=100)
    for attempt in range(4):
        t = 101 + attempt
        ours.process(parsed, service="scorer", start=t, end=t + 0.1,
                     error=f"ValueError: bad cv #{attempt + 1}", settle="nak")  # fmt: skip
    # the 5th attempt fails at 105 s and its handler terms the message: the advisory
    # is stored first, the attempt's spans come with its exporter's next batch
    log.bus_event("terminated", parsed, at_s=105.2, consumer=durable_name("scorer", PARSED))
    log.write(store_layout)
    engine = Correlator(data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=5))
    told = [a for a in engine.cold_pass(now=at(106)) if a["workflow_id"] == "wf-dlq"]
    assert [a["kind"] for a in told] == ["dead_lettered"]
    assert "after 4 failed attempts" in told[0]["detail"]

    ours.process(parsed, service="scorer", start=105, end=105.1,
                 error="ValueError: bad cv #5", settle="term")  # fmt: skip
    log.write(store_layout)
    told += engine.tick(now=at(108))
    told += engine.tick(now=at(110))
    engine.write_findings()
    engine.close()

    assert [a["kind"] for a in told] == ["dead_lettered"]  # told once
    (row,) = [a for a in read_outcome(store_layout).anomalies if a["workflow_id"] == "wf-dlq"]
    assert row["anomaly_id"] == told[0]["anomaly_id"]
    assert "after 5 failed attempts" in row["detail"]
    assert "last error: ValueError: bad cv #5" in row["detail"]
    evidence = orjson.loads(row["evidence"])
    assert (evidence["errors"], evidence["last_error"]) == (5, "ValueError: bad cv #5")
