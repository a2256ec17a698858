"""Messages whose producer is not traced: a consumer's span is the first sign of the
message (a root span, with no parent or link to a publish span), as a service fed by
an untraced app, or the README's OTLP example, leaves. Such a run is judged like any
other: a group that never got the message is owed it from when it was first seen, and
a run whose handler published nothing stops there."""

from __future__ import annotations

from store import StoreLayout
from tests.correlator.pipelines import correlate
from tests.correlator.span_shapes import ForeignSpans, SpanLog


def _orders(go: ForeignSpans, *, start: float) -> None:
    """orders.placed, handled by billing (which publishes orders.paid, shipped) and by
    an audit log (which publishes nothing)."""
    placed = go.publish("gateway", "orders.placed", at_s=start)
    paid = go.step(
        placed, service="billing", start=start + 0.2, end=start + 0.3, emits="orders.paid"
    )
    go.process(placed, service="audit", start=start + 0.2, end=start + 0.25)
    go.process(paid, service="shipping", start=start + 0.4, end=start + 0.5)


def test_a_group_that_never_got_a_message_whose_publish_was_not_traced_is_owed_it(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    go = ForeignSpans(log)
    for i in range(40):
        _orders(go, start=float(i))
    # billing handled it (and published on), the audit log never got it
    lone = go.process_untraced("orders.placed", service="billing", start=60, end=60.25)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=600)

    # not "in flight" for ever: the audit log's wait began when billing's span showed
    # the message, and its deadline has long passed
    assert outcome.statuses[lone] == ("stalled", "orders.placed → audit", "dropped")
    (dropped,) = outcome.of("dropped")
    assert dropped["workflow_id"] == lone
    assert dropped["service"] == "audit"
    assert "first seen at 12:01:00 UTC (its publish span never arrived)" in dropped["detail"]


def test_a_run_whose_producer_is_not_traced_stops_where_its_handler_published_nothing(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    go = ForeignSpans(log)
    for i in range(40):
        placed = go.publish("gateway", "orders.placed", at_s=float(i))
        paid = go.step(placed, service="billing", start=i + 0.2, end=i + 0.3, emits="orders.paid")
        go.process(paid, service="shipping", start=i + 0.4, end=i + 0.5)
    # billing handled it and published nothing: the run never reached orders.paid
    lone = go.process_untraced("orders.placed", service="billing", start=60, end=60.25)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=600)

    assert outcome.statuses[lone] == ("stalled", "after orders.placed", "no_next_event")
    assert [a["workflow_id"] for a in outcome.anomalies] == [lone]
