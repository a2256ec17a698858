"""A missing or garbled traceparent starts a new trace, marked broken, never a failure."""

from __future__ import annotations

import asyncio

import nats
import pytest
from opentelemetry.trace import NoOpTracerProvider

from instrumentation import Agent, TracedNats, extract_delivered, semconv
from instrumentation.telemetry import Telemetry
from tests.instrumentation.deterministic_spans import eventually, in_memory_telemetry, only_span


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {"traceparent": "not-a-traceparent"},
        {"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"},
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71"},
        {"traceparent": "00-00000000000000000000000000000000-b7ad6b7169203331-01"},
        {"traceparent": "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01"},
        {"traceparent": "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra"},
    ],
    ids=[
        "missing",
        "garbage",
        "all-zero-ids",
        "truncated",
        "zero-trace-id",
        "uppercase-hex",
        "version-ff",
        "version-00-with-extra-field",
    ],
)
async def test_missing_or_garbled_traceparent_starts_a_new_trace_marked_broken(
    nats_server, headers
):
    telemetry, exported = in_memory_telemetry("billing")
    got: asyncio.Queue = asyncio.Queue()
    async with await TracedNats.connect(
        nats_server.url, service_name="billing", telemetry=telemetry
    ) as nc:
        await nc.subscribe("orders.placed", cb=got.put)
        raw = await nats.connect(nats_server.url)
        await raw.publish("orders.placed", b"{}", headers=headers)
        msg = await asyncio.wait_for(got.get(), 10)
        await raw.close()

    process = only_span(exported, "process orders.placed")
    assert process["parent_span_id"] is None
    assert process["links"] == []
    assert process["attributes"][semconv.CHOREO_CONTEXT_BROKEN] is True
    assert process["status"] == "UNSET"
    # the new trace still names a workflow, so its follow-up events stay together
    assert msg.workflow_id == process["trace_id"]
    assert process["attributes"][semconv.CHOREO_WORKFLOW_ID] == process["trace_id"]


def test_a_producers_tracestate_and_go_style_header_case_reach_the_consumer():
    delivered = extract_delivered(
        {
            "Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "Tracestate": "vendor=opaque,other=1",
        }
    )
    assert not delivered.broken
    assert delivered.producer.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert delivered.producer.span_id == 0xB7AD6B7169203331
    assert delivered.producer.trace_flags.sampled
    assert delivered.producer.trace_state.to_header() == "vendor=opaque,other=1"


async def test_an_agents_spans_of_a_message_without_trace_context_share_one_workflow(
    nats_server, run_agents, raw_nats
):
    telemetry, exported = in_memory_telemetry("billing")
    agent = Agent("billing", nats_url=nats_server.url, telemetry=telemetry, fetch_timeout=0.2)
    seen = []

    @agent.on("orders.placed")
    async def bill(event):
        seen.append(event.workflow_id)
        await event.emit("orders.billed", {})

    await run_agents(agent)
    await raw_nats.jetstream().publish("orders.placed", b"{}")  # a producer we do not trace
    await eventually(lambda: agent.counters.processed == 1)

    receive = only_span(exported, "receive orders.placed")
    process = only_span(exported, "process orders.placed")
    emit = only_span(exported, "publish orders.billed")
    assert receive["attributes"][semconv.CHOREO_CONTEXT_BROKEN] is True
    workflows = {s["attributes"][semconv.CHOREO_WORKFLOW_ID] for s in (receive, process, emit)}
    assert workflows == set(seen)  # one workflow, not the receive span's own


async def test_a_traced_subscriptions_spans_of_a_message_without_trace_context_share_one_workflow(
    nats_server,
):
    telemetry, exported = in_memory_telemetry("billing")
    async with await TracedNats.connect(
        nats_server.url, service_name="billing", telemetry=telemetry
    ) as nc:
        sub = await nc.subscribe("orders.placed")
        raw = await nats.connect(nats_server.url)
        await raw.publish("orders.placed", b"{}")
        msg = await sub.next_msg(timeout=10)
        await raw.close()
        with msg.processing():
            await nc.publish("orders.billed", b"{}")

    receive = only_span(exported, "receive orders.placed")
    process = only_span(exported, "process orders.placed")
    emit = only_span(exported, "publish orders.billed")
    workflows = {s["attributes"][semconv.CHOREO_WORKFLOW_ID] for s in (receive, process, emit)}
    assert workflows == {msg.workflow_id}


async def test_messages_without_trace_context_start_workflows_of_their_own_without_opentelemetry(
    nats_server, run_agents, raw_nats
):
    # an Agent in a process that never set OpenTelemetry up: its tracer is a no-op,
    # whose spans all carry trace id 0
    telemetry = Telemetry(service_name="billing", tracer_provider=NoOpTracerProvider())
    agent = Agent("billing", nats_url=nats_server.url, telemetry=telemetry, fetch_timeout=0.2)
    seen = []

    @agent.on("orders.placed")
    async def bill(event):
        seen.append(event.workflow_id)

    await run_agents(agent)
    for _ in range(2):
        await raw_nats.jetstream().publish("orders.placed", b"{}")  # a producer we do not trace
    await eventually(lambda: agent.counters.processed == 2)

    assert len(set(seen)) == 2
    assert "0" * 32 not in seen
