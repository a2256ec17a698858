"""Settle spans (ack, nak, term) carry the message and workflow ids of the message
they settle, as every span of ours does (DESIGN.md's wire contract): a query of a
run's spans by workflow id shows how each of its messages was settled, the term of a
dead-lettered one included."""

from __future__ import annotations

from nats.js.api import ConsumerConfig

from instrumentation import Agent, TracedNats, semconv
from tests.instrumentation.deterministic_spans import (
    eventually,
    in_memory_telemetry,
    spans_named,
)

FAST = {"fetch_timeout": 0.2, "heartbeat_interval": 5, "drain_timeout": 5, "ack_wait": 5}


async def test_an_agents_ack_nak_and_term_spans_name_their_message_and_workflow(
    nats_server, run_agents
):
    telemetry, exporter = in_memory_telemetry("scorer")
    agent = Agent(
        "scorer", nats_url=nats_server.url, telemetry=telemetry, backoff=(0.05,),
        max_deliveries=2, **FAST,
    )  # fmt: skip

    @agent.on("recruit.cv.parsed")
    async def score(event):
        if event.data["cv"] == "bad":
            raise RuntimeError("unreadable")

    await run_agents(agent)
    good = await agent.start_workflow("recruit.cv.parsed", {"cv": "good"})
    bad = await agent.start_workflow("recruit.cv.parsed", {"cv": "bad"})
    await eventually(lambda: agent.counters.processed == 1 and agent.counters.failed == 2)
    await eventually(lambda: len(spans_named(exporter, "term recruit.cv.parsed")) == 1)

    processed = {
        s["attributes"][semconv.CHOREO_WORKFLOW_ID]: s["attributes"][semconv.MESSAGING_MESSAGE_ID]
        for s in spans_named(exporter, "process recruit.cv.parsed")
    }
    assert set(processed) == {good, bad}
    for name, workflow in (("ack", good), ("nak", bad), ("term", bad)):
        (settle,) = spans_named(exporter, f"{name} recruit.cv.parsed")
        assert settle["attributes"][semconv.CHOREO_WORKFLOW_ID] == workflow
        assert settle["attributes"][semconv.MESSAGING_MESSAGE_ID] == processed[workflow]


async def test_a_traced_messages_ack_names_its_message_and_workflow(nats_server):
    telemetry, exporter = in_memory_telemetry("scorer")
    async with await TracedNats.connect(
        nats_server.url, service_name="scorer", telemetry=telemetry
    ) as nc:
        js = nc.jetstream()
        await js.add_stream(name="RECRUIT", subjects=["recruit.>"])
        await js.publish("recruit.cv.parsed", b"{}", workflow_id="wf-1")
        psub = await js.pull_subscribe(
            "recruit.cv.parsed", durable="scorer", config=ConsumerConfig(ack_wait=30)
        )
        [msg] = await psub.fetch(1, timeout=5)
        await msg.ack()
        message_id = msg.message_id

    (ack,) = spans_named(exporter, "ack recruit.cv.parsed")
    assert ack["attributes"][semconv.CHOREO_WORKFLOW_ID] == "wf-1"
    assert message_id and ack["attributes"][semconv.MESSAGING_MESSAGE_ID] == message_id
