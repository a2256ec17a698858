"""A step slow only because its first attempt failed and was retried after a backoff:
the explanation says where the time went (the retry), not that it sat in a queue."""

from __future__ import annotations

from store import StoreLayout
from tests.correlator.pipelines import SCORED, correlate, history, up_to_parsed
from tests.correlator.span_shapes import SpanLog


def test_a_step_slow_only_on_its_retry_says_so_not_that_it_was_queued(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log, runs=30)
    parsed = up_to_parsed(ours, "wf-retried", start=100)  # published at 100.398 s
    ours.process(parsed, service="scorer", start=100.5, end=100.6, error="TimeoutError",
                 settle="nak", nak_delay_s=20)  # fmt: skip
    scored = ours.step(parsed, service="scorer", start=121, end=121.3, emits=SCORED)
    ours.process(scored, service="notifier", start=121.5, end=121.6)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=160)

    assert {(k, wf) for k, wf, _ in outcome.kinds()} == {("slow", "wf-retried")}
    detail = outcome.of("slow")[0]["detail"]
    # it read "(queue 21 s + processing 0.3 s)": a backlog that never was
    assert "queue" not in detail
    assert "1 attempt failed or given back first; the one that succeeded began 20.6 s after " \
        "the publish and took 300 ms" in detail  # fmt: skip
    assert outcome.statuses["wf-retried"][0] == "completed"
