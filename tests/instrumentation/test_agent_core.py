"""Agent on core NATS (``delivery="core"``): queue subscriptions and plain publish,
the same spans, dead letters at once, and nothing stored."""

from __future__ import annotations

import asyncio
import functools
import json
import random

import nats.js.errors
import pytest

from instrumentation import Agent, ConfigurationError, semconv, wire
from tests.instrumentation.deterministic_spans import (
    eventually,
    in_memory_telemetry,
    only_span,
    read_stream,
    spans_named,
)

FAST = {"heartbeat_interval": 5, "drain_timeout": 5}


async def test_core_pipeline_flows_end_to_end_with_one_trace_per_workflow(
    nats_server, run_agents, raw_nats
):
    parser_telemetry, parser_spans = in_memory_telemetry("parser")
    scorer_telemetry, scorer_spans = in_memory_telemetry("scorer")
    parser = Agent(
        "parser", delivery="core", nats_url=nats_server.url, telemetry=parser_telemetry, **FAST
    )
    scorer = Agent(
        "scorer", delivery="core", nats_url=nats_server.url, telemetry=scorer_telemetry, **FAST
    )
    scored: dict[str, dict] = {}

    @parser.on("recruit.cv.received")
    async def parse(event):
        await event.emit("recruit.cv.parsed", {"name": event.data["name"]})

    @scorer.on("recruit.cv.parsed", queue="scorers")
    async def score(event):
        scored[event.workflow_id] = event.data

    await run_agents(parser)
    await run_agents(scorer)
    workflows = [
        await parser.start_workflow("recruit.cv.received", {"name": name})
        for name in ("Ada", "Grace", "Edsger")
    ]
    await eventually(lambda: len(scored) == 3)
    assert {wf: data["name"] for wf, data in scored.items()} == dict(
        zip(workflows, ("Ada", "Grace", "Edsger"), strict=True)
    )

    all_spans = [*parser_spans.get_finished_spans(), *scorer_spans.get_finished_spans()]
    traces: dict[str, set[str]] = {}
    for span in all_spans:
        workflow = span.attributes[semconv.CHOREO_WORKFLOW_ID]
        traces.setdefault(workflow, set()).add(f"{span.context.trace_id:032x}")
    assert set(traces) == set(workflows)
    assert all(len(trace_ids) == 1 for trace_ids in traces.values())  # one trace each
    assert len(set().union(*traces.values())) == 3  # and a different one per workflow
    assert not [s for s in all_spans if s.attributes[semconv.MESSAGING_OPERATION_TYPE] == "settle"]

    emits = {s["attributes"][semconv.MESSAGING_MESSAGE_ID]: s for s in
             spans_named(parser_spans, "publish recruit.cv.parsed")}  # fmt: skip
    for process in spans_named(scorer_spans, "process recruit.cv.parsed"):
        emit = emits[process["attributes"][semconv.MESSAGING_MESSAGE_ID]]
        assert process["kind"] == "CONSUMER"
        assert process["parent_span_id"] == emit["span_id"]
        assert process["links"] == [emit["span_id"]]
        assert process["attributes"][semconv.MESSAGING_CONSUMER_GROUP] == "scorers"
        assert semconv.NATS_STREAM not in process["attributes"]
    receives = spans_named(scorer_spans, "receive recruit.cv.parsed")
    assert len(receives) == 3 and {r["kind"] for r in receives} == {"CLIENT"}
    assert scorer.counters.processed == 3 and scorer.counters.failed == 0

    with pytest.raises(nats.js.errors.NotFoundError):  # nothing was stored
        await raw_nats.jetstream().stream_info(wire.EVENTS_STREAM)


async def test_failing_core_handler_dead_letters_its_message_with_the_reason(
    nats_server, run_agents, raw_nats
):
    telemetry, spans = in_memory_telemetry("scorer")
    agent = Agent("scorer", delivery="core", nats_url=nats_server.url, telemetry=telemetry, **FAST)
    attempts = []

    @agent.on("recruit.cv.parsed")
    async def score(event):
        attempts.append(event.attempt)
        raise ValueError("no skills section")

    dead_letters = []
    await raw_nats.subscribe("dlq.>", cb=functools.partial(_append, dead_letters))
    await run_agents(agent)
    workflow_id = await agent.start_workflow(
        "recruit.cv.parsed", {"cv": 1}, headers={"X-Tenant": "acme"}
    )
    await eventually(lambda: len(dead_letters) == 1)
    await asyncio.sleep(0.2)
    assert attempts == [1]  # core NATS does not redeliver

    [dead] = dead_letters
    assert dead.subject == "dlq.recruit.cv.parsed"
    assert json.loads(dead.data) == {"cv": 1}
    assert dead.headers["X-Tenant"] == "acme"
    assert dead.headers[wire.WORKFLOW_ID] == workflow_id
    assert wire.TRACEPARENT in dead.headers
    reason = dead.headers[wire.DEAD_LETTER_REASON]
    assert "no skills section" in reason and "does not redeliver" in reason
    assert dead.headers[wire.DEAD_LETTER_SERVICE] == "scorer"
    # the server runs JetStream, so the dead letter is also kept
    [stored] = await read_stream(raw_nats.jetstream(), wire.DEAD_LETTER_STREAM, "dlq.>")
    assert stored.headers[wire.DEAD_LETTER_REASON] == reason

    process = only_span(spans, "process recruit.cv.parsed")
    assert process["status"] == "ERROR" and "exception" in process["events"]
    assert process["attributes"][semconv.CHOREO_DEAD_LETTERED] is True
    assert (
        only_span(spans, "publish dlq.recruit.cv.parsed")["parent_span_id"] == (process["span_id"])
    )
    assert not spans_named(spans, "term recruit.cv.parsed")
    assert (agent.counters.failed, agent.counters.dead_lettered) == (1, 1)


async def test_core_publish_to_a_subject_nobody_subscribes_still_has_its_publish_span(
    nats_server, raw_nats
):
    telemetry, spans = in_memory_telemetry("orders")
    agent = Agent("orders", delivery="core", nats_url=nats_server.url, telemetry=telemetry)
    async with agent:
        workflow_id = await agent.start_workflow("orders.placed", {"order": 7})

    publish = only_span(spans, "publish orders.placed")
    assert publish["kind"] == "PRODUCER"
    assert publish["parent_span_id"] is None
    assert publish["attributes"][semconv.CHOREO_WORKFLOW_ID] == workflow_id
    assert publish["attributes"][semconv.MESSAGING_MESSAGE_ID]
    assert semconv.NATS_STREAM not in publish["attributes"]  # sent, never stored
    with pytest.raises(nats.js.errors.NotFoundError):
        await raw_nats.jetstream().stream_info(wire.EVENTS_STREAM)


async def test_a_core_agents_event_reaches_a_jetstream_agent_whose_stream_captures_it(
    nats_server, run_agents
):
    producer_telemetry, _ = in_memory_telemetry("intake")
    consumer_telemetry, consumer_spans = in_memory_telemetry("scorer")
    producer = Agent(
        "intake", delivery="core", nats_url=nats_server.url, telemetry=producer_telemetry
    )
    consumer = Agent(
        "scorer", nats_url=nats_server.url, telemetry=consumer_telemetry, fetch_timeout=0.2, **FAST
    )
    handled = []

    @consumer.on("recruit.cv.parsed")
    async def score(event):
        handled.append((event.workflow_id, event.data))

    await run_agents(consumer)  # its stream now captures recruit.>
    async with producer:
        workflow_id = await producer.start_workflow("recruit.cv.parsed", {"cv": 1})
    await eventually(lambda: handled == [(workflow_id, {"cv": 1})])
    process = only_span(consumer_spans, "process recruit.cv.parsed")
    assert process["attributes"][semconv.NATS_STREAM] == wire.EVENTS_STREAM


async def test_stopping_a_core_agent_finishes_its_steps_and_reports_them_in_a_heartbeat(
    nats_server, raw_nats
):
    telemetry, _ = in_memory_telemetry("scorer")
    agent = Agent("scorer", delivery="core", nats_url=nats_server.url, telemetry=telemetry, **FAST)
    finished = []

    @agent.on("recruit.cv.parsed")
    async def score(event):
        await asyncio.sleep(0.3)
        finished.append(event.data["cv"])

    beats = []
    await raw_nats.subscribe(
        wire.HEARTBEAT_SUBJECT_PREFIX + "scorer", cb=functools.partial(_append, beats)
    )
    run = asyncio.create_task(agent.run())
    await agent.wait_ready(timeout=10)
    for cv in range(3):
        await agent.start_workflow("recruit.cv.parsed", {"cv": cv})
    await eventually(lambda: agent.counters.in_flight == 3)
    agent.stop()
    await asyncio.wait_for(run, 10)

    assert sorted(finished) == [0, 1, 2]
    await eventually(lambda: beats and json.loads(beats[-1].data)["processed"] == 3)


async def _append(into: list, msg) -> None:
    into.append(msg)


def test_an_unknown_delivery_mode_is_refused_with_the_choices():
    with pytest.raises(ConfigurationError, match=r"'jetstream'.*'core'"):
        Agent("scorer", delivery="kafka")  # type: ignore[arg-type]


async def test_ids_do_not_repeat_when_the_application_seeds_random(nats_server):
    # a seeded global generator must not make a restarted service reuse message ids,
    # which JetStream would then drop as duplicates
    telemetry, spans = in_memory_telemetry("orders")
    agent = Agent("orders", delivery="core", nats_url=nats_server.url, telemetry=telemetry)
    async with agent:
        random.seed(7)
        first = await agent.start_workflow("orders.placed", {})
        random.seed(7)
        second = await agent.start_workflow("orders.placed", {})
    assert first != second
    message_ids = {
        s["attributes"][semconv.MESSAGING_MESSAGE_ID]
        for s in spans_named(spans, "publish orders.placed")
    }
    assert len(message_ids) == 2
