"""The SQL views readers use: workflows rebuilt across async hops, hops with queue
wait apart from processing, and no negative latency under clock skew."""

from __future__ import annotations

import duckdb

import correlator
from choreoscope.catalog import write_catalog
from correlator import queries
from correlator.choreography_file import parse_choreography
from store import StoreLayout
from tests.correlator.pipelines import (
    PARSED,
    RECEIVED,
    SCORED,
    correlate,
    healthy_run,
    history,
    up_to_parsed,
)
from tests.correlator.span_shapes import ForeignSpans, OurSpans, SpanLog, at

DECLARED_RECRUITMENT = f"""
version: 1
workflows:
  recruitment:
    starts_with: {RECEIVED}
    terminal: [{SCORED}]
    steps:
      {RECEIVED}:
        consumers: [parser]
        next: [{PARSED}]
"""


def test_fresh_store_has_every_contract_view_empty(store_layout: StoreLayout) -> None:
    con = correlator.connect(store_layout.root)
    for view in ("messages", "workflows", "anomalies", "edges", "hops"):
        assert con.execute(f"select count(*) from {view}").fetchone() == (0,)


def test_workflow_spans_three_services_as_one_run(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = OurSpans(log)
    start = ours.publish("intake", "recruit.application.received", workflow_id="wf-1", at_s=0)
    parsed = ours.step(start, service="parser", start=0.1, end=0.5, emits="recruit.cv.parsed")
    ours.process(parsed, service="scorer", start=0.6, end=0.9)
    log.write(store_layout)

    con = correlator.connect(store_layout.root)
    rows = con.execute(
        "select workflow_id, workflow_type, services, span_count from workflows"
    ).fetchall()
    assert rows == [("wf-1", "recruit.application.received", ["intake", "parser", "scorer"], 8)]
    outcomes = con.execute("select subject, consumers, outcome from messages order by 1").fetchall()
    assert outcomes == [
        ("recruit.application.received", ["parser"], "processed"),
        ("recruit.cv.parsed", ["scorer"], "processed"),
    ]


def test_a_message_its_handler_gave_back_is_not_processed_by_it(
    store_layout: StoreLayout,
) -> None:
    # handlers that return without raising, but nak (not ready) or term (unusable):
    # the messages view counts as detection does, so it never says "processed" of a
    # message a finding calls failed or dead-lettered
    log = SpanLog()
    ours = OurSpans(log)
    nak = ours.publish("intake", "recruit.application.received", workflow_id="wf-n", at_s=0)
    ours.process(nak, service="parser", start=0.1, end=0.2, settle="nak", nak_delay_s=20)
    term = ours.publish("intake", "recruit.application.received", workflow_id="wf-t", at_s=0)
    ours.process(term, service="parser", start=0.1, end=0.2, settle="term")
    later = ours.publish("intake", "recruit.application.received", workflow_id="wf-r", at_s=0)
    ours.process(later, service="parser", start=0.1, end=0.2, settle="nak", nak_delay_s=1)
    ours.process(later, service="parser", start=1.2, end=1.3)  # the redelivery
    log.write(store_layout)

    con = correlator.connect(store_layout.root)
    rows = con.execute(
        "select workflow_id, consumers, outcome, attempts, successes from messages order by 1"
    ).fetchall()
    assert rows == [
        ("wf-n", [], "failed", 1, 0),
        ("wf-r", ["parser"], "processed", 2, 1),
        ("wf-t", [], "dead_lettered", 1, 0),
    ]


def test_fan_out_and_fan_in_stay_one_workflow(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = OurSpans(log)
    order = ours.publish("shop", "orders.placed", workflow_id="wf-fan", at_s=0)
    paid = ours.step(order, service="billing", start=0.1, end=0.2, emits="orders.paid")
    packed = ours.step(order, service="warehouse", start=0.1, end=0.3, emits="orders.packed")
    ours.process(paid, service="shipping", start=0.4, end=0.5)
    ours.process(packed, service="shipping", start=0.4, end=0.6)
    log.write(store_layout)

    con = correlator.connect(store_layout.root)
    assert con.execute("select workflow_id from workflows").fetchall() == [("wf-fan",)]
    consumers = con.execute("select consumers from messages where subject = 'orders.placed'")
    assert consumers.fetchone() == (["billing", "warehouse"],)


def test_foreign_link_only_traces_join_into_one_workflow(store_layout: StoreLayout) -> None:
    log = SpanLog()
    go = ForeignSpans(log, links_only=True)
    placed = go.publish("gateway", "orders.placed", at_s=0)
    paid = go.step(placed, service="billing", start=0.2, end=0.3, emits="orders.paid")
    go.process(paid, service="shipping", start=0.4, end=0.5)
    log.write(store_layout)

    con = correlator.connect(store_layout.root)
    (workflow_id, services) = con.execute("select workflow_id, services from workflows").fetchone()
    assert workflow_id == placed.trace_id
    assert services == ["billing", "gateway", "shipping"]
    hops = con.execute("select subject, producer_service, consumer from hops order by 1")
    assert hops.fetchall() == [
        ("orders.paid", "billing", "shipping"),
        ("orders.placed", "gateway", "billing"),
    ]


def test_hop_shows_queue_wait_apart_from_processing(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = OurSpans(log)
    sent = ours.publish("intake", "recruit.application.received", workflow_id="wf-q", at_s=0)
    ours.process(sent, service="parser", start=2.0, end=2.5)
    log.write(store_layout)

    con = correlator.connect(store_layout.root)
    wait, work, skew = con.execute(
        "select queue_wait_ms, processing_ms, clock_skew from hops"
    ).fetchone()
    assert (round(wait), round(work), skew) == (2000, 500, False)


def test_skewed_consumer_clock_never_gives_negative_latency(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = OurSpans(log)
    sent = ours.publish("intake", "recruit.application.received", workflow_id="wf-s", at_s=10)
    ours.process(sent, service="parser", start=8.0, end=8.5)  # its clock runs 2 s behind
    log.write(store_layout)

    con = correlator.connect(store_layout.root)
    wait, latency, skew = con.execute(
        "select queue_wait_ms, latency_ms, clock_skew from hops"
    ).fetchone()
    assert wait == 0 and latency == 0
    assert skew is True


def test_a_downstream_clock_running_behind_leaves_the_workflow_its_type(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-skew", at_s=100)
    # the parser's clock runs 0.5 s behind: its publish is stamped before intake's
    parsed = ours.step(first, service="parser", start=99.6, end=99.9, emits=PARSED)
    ours.process(parsed, service="scorer", start=100.5, end=100.8)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=120)

    assert _workflow_type(store_layout, "wf-skew") == RECEIVED
    assert outcome.statuses["wf-skew"][0] == "completed"


def test_a_publish_made_deep_in_a_handlers_own_spans_does_not_start_the_run(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-deep", at_s=100)
    # the parser's clock runs 0.5 s behind, and it publishes two spans of its own deep
    processing = ours.process(first, service="parser", start=99.6, end=99.9)
    outer = log.add(trace_id=first.trace_id, parent_span_id=processing, name="parse",
                    kind="internal", service_name="parser", start=99.61, end=99.89)  # fmt: skip
    inner = log.add(trace_id=first.trace_id, parent_span_id=outer["span_id"], name="emit",
                    kind="internal", service_name="parser", start=99.62, end=99.88)  # fmt: skip
    parsed = ours.publish("parser", PARSED, workflow_id="wf-deep", at_s=99.7,
                          trace_id=first.trace_id, parent_span_id=inner["span_id"])  # fmt: skip
    ours.process(parsed, service="scorer", start=100.5, end=100.8)
    log.write(store_layout)
    outcome = correlate(store_layout, now_s=120)

    assert _workflow_type(store_layout, "wf-deep") == RECEIVED
    # and what it published follows the message it was processing: no deviation
    assert outcome.kinds() == set()


def test_a_publish_made_in_a_receive_span_follows_the_message_received(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-recv", at_s=100)
    # the parser's clock runs 0.5 s behind, and it publishes from its receive span
    ours.receive(first, service="parser", at_s=99.6)
    receive = log.rows[-1]
    parsed = ours.publish("parser", PARSED, workflow_id="wf-recv", at_s=99.7,
                          trace_id=first.trace_id, parent_span_id=receive["span_id"])  # fmt: skip
    ours.process(parsed, service="scorer", start=100.5, end=100.8)
    log.write(store_layout)
    correlate(store_layout, now_s=120)

    con = correlator.connect(store_layout.root)
    assert con.execute(
        "SELECT from_subject, cause_seen, starts_run FROM transitions WHERE to_subject = $s "
        "AND workflow_id = 'wf-recv'",
        {"s": PARSED},
    ).fetchall() == [(RECEIVED, True, False)]
    assert _workflow_type(store_layout, "wf-recv") == RECEIVED


def _workflow_type(layout: StoreLayout, workflow_id: str) -> str:
    con = correlator.connect(layout.root)
    try:
        (workflow_type,) = con.execute(
            "SELECT workflow_type FROM workflows WHERE workflow_id = $w", {"w": workflow_id}
        ).fetchone()
        return workflow_type
    finally:
        con.close()


def test_a_span_whose_attributes_are_not_json_leaves_its_workflow_readable(
    store_layout: StoreLayout,
) -> None:
    # another exporter's span, stored as sent: the steps and audit tables read around it
    log = SpanLog()
    ours = OurSpans(log)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-odd", at_s=1)
    ours.step(first, service="parser", start=1.1, end=1.4, emits=PARSED)
    log.rows[-1]["attributes"] = "not json {"
    log.rows[-1]["events"] = "[not json"
    stored = len(log.rows)
    log.write(store_layout)
    con = correlator.connect(store_layout.root)

    steps = queries.workflow_steps(con, workflow_id="wf-odd")
    audit = queries.workflow_audit(con, workflow_id="wf-odd")

    assert len(steps) == stored and audit.empty


def test_the_map_names_an_unknown_producer_and_reads_latencies_to_a_tenth_of_a_ms(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = OurSpans(log)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-1", at_s=1)
    ours.step(first, service="parser", start=1.1234, end=1.45678, emits=PARSED)
    lost = ours.publish("intake", RECEIVED, workflow_id="wf-2", at_s=2)
    log.rows = [r for r in log.rows if r["span_id"] != lost.span_id]  # its span never came
    ours.step(lost, service="parser", start=2.1, end=2.2, emits=PARSED)
    log.write(store_layout)

    edges = queries.choreography_edges(correlator.connect(store_layout.root), since=None)

    received = edges[edges["subject"] == RECEIVED]
    assert sorted(received["producer_service"]) == ["(producer unknown)", "intake"]
    assert all(round(v, 1) == v for v in edges["p50_ms"].dropna())


def test_a_dead_letter_queue_hop_waited_from_the_dead_letter_not_the_first_publish(
    store_layout: StoreLayout,
) -> None:
    # the scorer gives up on a CV 20 s after it was published and republishes it to
    # dlq.<subject> with its headers (its message id too); an ops group takes it
    log = SpanLog()
    ours = history(log)
    parsed = up_to_parsed(ours, "wf-poison", start=20)
    span = ours.process(parsed, service="scorer", start=40.5, end=40.7, error="bad cv",
                        settle="term")  # fmt: skip
    dead = ours.publish(
        "scorer", f"dlq.{PARSED}", workflow_id="wf-poison", at_s=40.6,
        trace_id=parsed.trace_id, parent_span_id=span, message_id=parsed.message_id,
    )  # fmt: skip
    ours.process(dead, service="dlq-monitor", start=40.8, end=40.9)
    log.write(store_layout)

    con = correlator.connect(store_layout.root)
    hop = con.execute(
        "select producer_service, round(queue_wait_ms) from hops where subject = $s",
        {"s": f"dlq.{PARSED}"},
    ).fetchall()
    assert hop == [("scorer", 200.0)]  # not the parser's publish, 20 s before
    edges = con.execute("select producer_service from edges where consumer_service = 'dlq-monitor'")
    assert edges.fetchall() == [("scorer",)]


def test_a_run_not_judged_yet_is_listed_under_its_declared_workflow_name(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log, runs=3)
    log.write(store_layout)
    correlate(store_layout, now_s=60, choreography=parse_choreography(DECLARED_RECRUITMENT))
    healthy_run(ours, "wf-new", start=70)  # arrives after the pass
    log.write(store_layout)
    con = correlator.connect(store_layout.root)

    listed = queries.list_workflows(con, since=None, workflow_type="recruitment")

    assert "wf-new" in set(listed["workflow_id"])
    assert _workflow_type(store_layout, "wf-new") == "recruitment"


def test_a_run_over_two_traces_reads_the_same_in_a_window_as_in_its_detail(
    store_layout: StoreLayout,
) -> None:
    # the parser lost the trace context: its publish, an hour on, starts a new trace
    # under the same workflow id; the window holds only that second trace
    log = SpanLog()
    ours = OurSpans(log)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-2t", at_s=0)
    ours.process(first, service="parser", start=0.1, end=0.2)
    later = ours.publish("parser", PARSED, workflow_id="wf-2t", at_s=3600)
    ours.process(later, service="scorer", start=3600.1, end=3600.2)
    log.write(store_layout)
    con = correlator.connect(store_layout.root)

    listed = queries.list_workflows(con, since=at(1800)).iloc[0]
    tiles = queries.overview_tiles(con, since=at(1800))
    detail = queries.workflow_run(con, workflow_id="wf-2t")

    assert detail is not None
    assert (listed["workflow_type"], listed["started_at"], listed["duration_ms"]) == (
        detail.workflow_type,
        detail.started_at,
        detail.duration_ms,
    )
    assert detail.started_at == at(0)
    assert tiles.started == 0  # it began an hour before the window


def test_hops_messages_and_edges_read_the_stored_spans_a_few_times_not_hundreds(
    store_layout: StoreLayout,
) -> None:
    # a view is expanded wherever a query names it: hops, messages and edges, built
    # from views built from views, read the store's spans some 200 times (14 s on the
    # demo's 9k spans, a minute on 1M) from `duckdb` or `choreoscope.connect()`
    log = SpanLog()
    history(log, runs=3)
    log.write(store_layout)
    write_catalog(store_layout)
    readers = {
        "connect": correlator.connect(store_layout.root),
        "catalog": duckdb.connect(str(store_layout.catalog), read_only=True),
    }
    for reader, con in readers.items():
        for view in ("hops", "messages", "edges"):
            (_, plan), *_ = con.execute(f"EXPLAIN SELECT * FROM {view}").fetchall()
            assert plan.count("READ_PARQUET") <= 10, (reader, view, plan.count("READ_PARQUET"))
        assert con.execute("SELECT count(*) FROM hops").fetchone() == (9,)
        assert con.execute("SELECT count(*) FROM messages").fetchone() == (9,)
        con.close()


def test_a_run_whose_producer_is_not_traced_is_typed_by_what_it_consumed_not_its_dead_letter(
    store_layout: StoreLayout,
) -> None:
    # a message from a producer without tracing, refused and dead-lettered: the run's
    # one publish span is its dead letter's, and the run read as type dlq.edge.a.in
    log = SpanLog()
    ours = OurSpans(log)
    message = ours.publish("legacy", "edge.a.in", workflow_id="wf-untraced", at_s=10)
    log.rows = [r for r in log.rows if r["span_id"] != message.span_id]  # not traced
    attempt = ours.process(
        message, service="edge", start=10.1, end=10.2, error="not JSON", settle="term"
    )
    ours.publish(
        "edge", "dlq.edge.a.in", workflow_id="wf-untraced", at_s=10.2,
        trace_id=message.trace_id, parent_span_id=attempt, message_id=message.message_id,
    )  # fmt: skip
    log.write(store_layout)

    def workflow_type() -> str:
        con = correlator.connect(store_layout.root)
        try:
            (found,) = con.execute(
                "SELECT workflow_type FROM workflows WHERE workflow_id = 'wf-untraced'"
            ).fetchone()
        finally:
            con.close()
        return found

    assert workflow_type() == "edge.a.in"  # before any pass
    outcome = correlate(store_layout, now_s=60)
    assert workflow_type() == "edge.a.in"
    assert {k for k, _, _ in outcome.kinds()} == {"dead_lettered"}
