"""Agent: handlers, emit within a workflow, retries, dead letters, draining."""

from __future__ import annotations

import asyncio

import pytest

from instrumentation import Agent, ConfigurationError, semconv, wire
from tests.instrumentation.deterministic_spans import (
    eventually,
    in_memory_telemetry,
    only_span,
    spans_named,
)

FAST = {"fetch_timeout": 0.2, "heartbeat_interval": 5, "drain_timeout": 5}


async def test_emitted_event_continues_the_workflow_and_the_trace(nats_server, run_agents):
    parser_telemetry, parser_spans = in_memory_telemetry("parser")
    scorer_telemetry, scorer_spans = in_memory_telemetry("scorer")
    parser = Agent("parser", nats_url=nats_server.url, telemetry=parser_telemetry, **FAST)
    scorer = Agent("scorer", nats_url=nats_server.url, telemetry=scorer_telemetry, **FAST)
    seen = []

    @parser.on("recruit.cv.received")
    async def parse(event):
        seen.append(event)
        await event.emit("recruit.cv.parsed", {"name": event.data["name"], "skills": 3})

    @scorer.on("recruit.cv.parsed", queue="scorers")
    async def score(event):
        seen.append(event)

    await run_agents(parser)
    await run_agents(scorer)
    workflow_id = await parser.start_workflow("recruit.cv.received", {"name": "Ada"})
    await eventually(lambda: len(seen) == 2)

    received, parsed = seen
    assert parsed.data == {"name": "Ada", "skills": 3}
    assert received.workflow_id == parsed.workflow_id == workflow_id
    assert (received.attempt, parsed.attempt) == (1, 1)
    assert parsed.subject == "recruit.cv.parsed" and parsed.message_id

    start = only_span(parser_spans, "publish recruit.cv.received")
    process_received = only_span(parser_spans, "process recruit.cv.received")
    emit = only_span(parser_spans, "publish recruit.cv.parsed")
    receive_parsed = only_span(scorer_spans, "receive recruit.cv.parsed")
    process_parsed = only_span(scorer_spans, "process recruit.cv.parsed")
    assert start["parent_span_id"] is None
    assert process_received["parent_span_id"] == start["span_id"]
    assert process_received["links"] == [start["span_id"]]
    assert emit["parent_span_id"] == process_received["span_id"]
    assert receive_parsed["parent_span_id"] == emit["span_id"]
    assert receive_parsed["kind"] == "CLIENT"
    assert process_parsed["parent_span_id"] == emit["span_id"]
    assert process_parsed["kind"] == "CONSUMER"
    assert {s["trace_id"] for s in (start, emit, process_parsed)} == {start["trace_id"]}
    assert process_parsed["attributes"][semconv.MESSAGING_CONSUMER_GROUP] == "scorers"
    assert process_parsed["attributes"][semconv.CHOREO_WORKFLOW_ID] == workflow_id
    assert process_parsed["attributes"][semconv.MESSAGING_MESSAGE_ID] == parsed.message_id
    assert process_parsed["attributes"][semconv.NATS_STREAM] == wire.EVENTS_STREAM
    await eventually(lambda: len(spans_named(scorer_spans, "ack recruit.cv.parsed")) == 1)
    ack = only_span(scorer_spans, "ack recruit.cv.parsed")
    assert ack["parent_span_id"] == process_parsed["span_id"]
    assert scorer.counters.processed == 1 and scorer.counters.received == 1


async def test_queue_group_shares_events_between_instances(nats_server, run_agents):
    handled: list[str] = []
    instances = []
    for number in range(2):
        telemetry, _ = in_memory_telemetry(f"shipper{number}")
        agent = Agent("shipper", nats_url=nats_server.url, telemetry=telemetry, **FAST)

        @agent.on("orders.paid", queue="shipper")
        async def ship(event, number=number):
            handled.append(f"{number}:{event.data['order']}")
            await asyncio.sleep(0.01)

        instances.append(agent)
        await run_agents(agent)
    for order in range(20):
        await instances[0].start_workflow("orders.paid", {"order": order})
    await eventually(lambda: len(handled) == 20)
    await asyncio.sleep(0.2)
    assert sorted(int(h.split(":")[1]) for h in handled) == list(range(20))  # each once


async def test_republishing_a_message_id_is_stored_once_and_marked_duplicate(
    nats_server, run_agents
):
    telemetry, spans = in_memory_telemetry("orders")
    agent = Agent("orders", nats_url=nats_server.url, telemetry=telemetry, **FAST)
    handled = []

    @agent.on("orders.placed")
    async def place(event):
        handled.append(event.message_id)

    await run_agents(agent)
    await agent.start_workflow("orders.placed", {"order": 1}, message_id="order-1-placed")
    await agent.start_workflow(
        "orders.placed", {"order": 1}, headers={"nats-msg-id": "order-1-placed"}
    )
    await eventually(lambda: handled == ["order-1-placed"])
    await asyncio.sleep(0.3)
    assert handled == ["order-1-placed"]
    first, second = spans_named(spans, "publish orders.placed")
    assert semconv.NATS_DUPLICATE not in first["attributes"]
    assert second["attributes"][semconv.NATS_DUPLICATE] is True
    assert second["attributes"][semconv.MESSAGING_MESSAGE_ID] == "order-1-placed"


async def test_subjects_another_stream_captures_are_refused_with_the_stream_to_use(
    nats_server, raw_nats
):
    await raw_nats.jetstream().add_stream(name="ORDERS", subjects=["orders.>"])
    telemetry, _ = in_memory_telemetry("billing")
    agent = Agent("billing", nats_url=nats_server.url, telemetry=telemetry, **FAST)

    @agent.on("orders.placed")
    async def bill(event):
        pass

    with pytest.raises(ConfigurationError, match="stream='ORDERS'"):
        await asyncio.wait_for(agent.run(), 10)


async def test_an_agent_on_an_existing_stream_consumes_from_it(nats_server, raw_nats, run_agents):
    await raw_nats.jetstream().add_stream(name="ORDERS", subjects=["orders.>"])
    telemetry, _ = in_memory_telemetry("billing")
    agent = Agent("billing", nats_url=nats_server.url, telemetry=telemetry, stream="ORDERS", **FAST)
    handled = []

    @agent.on("orders.placed")
    async def bill(event):
        handled.append(event.data)

    await run_agents(agent)
    await agent.start_workflow("orders.placed", {"order": 3})
    await eventually(lambda: handled == [{"order": 3}])
    info = await raw_nats.jetstream().stream_info("ORDERS")
    assert info.config.subjects == ["orders.>"]  # left as it was


async def test_max_in_flight_bounds_concurrent_steps_across_handlers(nats_server, run_agents):
    telemetry, _ = in_memory_telemetry("worker")
    agent = Agent("worker", nats_url=nats_server.url, telemetry=telemetry, max_in_flight=3, **FAST)
    running = 0
    most = 0
    done = []

    async def step(event):
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1
        done.append(event.subject)

    agent.on("jobs.small")(step)
    agent.on("jobs.large")(step)
    for number in range(10):
        await agent.start_workflow("jobs.small", {"n": number})
        await agent.start_workflow("jobs.large", {"n": number})
    await run_agents(agent)
    await eventually(lambda: len(done) == 20)
    assert most == 3


async def test_an_idle_handler_does_not_hold_back_another_handlers_events(nats_server, run_agents):
    telemetry, _ = in_memory_telemetry("worker")
    # long-lived pull requests: a request holding every slot would block for 20 s
    agent = Agent(
        "worker",
        nats_url=nats_server.url,
        telemetry=telemetry,
        max_in_flight=2,
        fetch_timeout=20,
        drain_timeout=5,
    )
    handled = []

    @agent.on("jobs.idle")
    async def idle(event):
        handled.append("idle")

    @agent.on("jobs.busy")
    async def busy(event):
        handled.append(event.data["n"])

    await run_agents(agent)
    for number in range(4):
        await agent.start_workflow("jobs.busy", {"n": number})
    await eventually(lambda: sorted(handled) == [0, 1, 2, 3], timeout=10)
    agent.stop()
