"""A JetStream handler that runs longer than ack_wait keeps its message: no redelivery
while it runs (no step processed twice), up to max_processing; nothing is sent for
the message once its handler has ended."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import pytest

from instrumentation import Agent, semconv, wire
from tests.instrumentation.deterministic_spans import eventually, in_memory_telemetry, spans_named

FAST = {"fetch_timeout": 0.2, "heartbeat_interval": 5, "drain_timeout": 5}
DURABLE = "scorer--recruit_cv_parsed"


def is_ack(data: bytes) -> bool:  # nats-py acks with an empty body
    return data in (b"", b"+ACK")


def is_nak(data: bytes) -> bool:
    return data.startswith(b"-NAK")


async def consumer_settled(js) -> object:
    """The consumer's info once nothing is pending acks (an ack is applied a moment later)."""
    for _ in range(100):
        info = await js.consumer_info(wire.EVENTS_STREAM, DURABLE)
        if info.num_ack_pending == 0:
            return info
        await asyncio.sleep(0.05)
    return info


async def test_handler_running_three_times_ack_wait_is_delivered_once(
    nats_server, run_agents, raw_nats
):
    telemetry, spans = in_memory_telemetry("scorer")
    agent = Agent("scorer", nats_url=nats_server.url, telemetry=telemetry, ack_wait=1, **FAST)
    attempts = []

    @agent.on("recruit.cv.parsed")
    async def score(event):
        attempts.append(event.attempt)
        await asyncio.sleep(3.5)  # a model call: three and a half times ack_wait

    await run_agents(agent)
    await agent.start_workflow("recruit.cv.parsed", {"cv": 1})
    await eventually(lambda: agent.counters.processed == 1, timeout=20)
    await asyncio.sleep(2)  # twice ack_wait: a redelivery would have come by now

    assert attempts == [1]
    info = await consumer_settled(raw_nats.jetstream())
    assert info.num_ack_pending == 0 and info.num_redelivered == 0
    (process,) = spans_named(spans, "process recruit.cv.parsed")
    assert process["attributes"][semconv.CHOREO_KEEP_ALIVE_COUNT] >= 1
    # keep-alives are not settlements: no span each
    assert spans_named(spans, "in_progress recruit.cv.parsed") == []


async def test_handler_running_past_max_processing_has_its_message_delivered_again(
    nats_server, run_agents, caplog
):
    telemetry, _ = in_memory_telemetry("scorer")
    agent = Agent(
        "scorer",
        nats_url=nats_server.url,
        telemetry=telemetry,
        ack_wait=1,
        max_processing=3,
        **{**FAST, "drain_timeout": 0.5},
    )
    loop = asyncio.get_running_loop()
    started_at: dict[int, float] = {}
    hung = asyncio.Event()

    @agent.on("recruit.cv.parsed")
    async def score(event):
        started_at[event.attempt] = loop.time()
        if event.attempt == 1:
            await hung.wait()  # a handler that hangs

    await run_agents(agent)
    with caplog.at_level(logging.WARNING, logger="instrumentation.keep_alive"):
        await agent.start_workflow("recruit.cv.parsed", {"cv": 1})
        await eventually(lambda: 2 in started_at, timeout=20)
    hung.set()

    # kept past ack_wait (1 s) until max_processing (3 s); a margin below it for
    # clocks, none above (a busy machine only makes it later)
    assert started_at[2] - started_at[1] >= 2
    assert "max_processing=3 s" in caplog.text


@pytest.mark.parametrize("outcome", ["returns", "raises", "cancelled"])
async def test_no_keep_alive_is_sent_once_the_handler_has_ended(
    nats_server, run_agents, raw_nats, outcome
):
    telemetry, _ = in_memory_telemetry("scorer")
    agent = Agent(
        "scorer",
        nats_url=nats_server.url,
        telemetry=telemetry,
        ack_wait=0.6,
        backoff=(30,),  # a nak'ed message is not back during the test
        **{**FAST, "drain_timeout": 0.3},
    )
    handler_ended = asyncio.Event()

    @agent.on("recruit.cv.parsed")
    async def score(event):
        try:
            await asyncio.sleep(60 if outcome == "cancelled" else 1.5)
            if outcome == "raises":
                raise RuntimeError("model refused")
        finally:
            handler_ended.set()

    # what the agent tells JetStream about each delivery, in order
    said: dict[str, list[bytes]] = defaultdict(list)

    async def overhear(msg):
        said[msg.subject].append(msg.data)

    observer = await raw_nats.subscribe("$JS.ACK.>", cb=overhear)
    run = await run_agents(agent)
    await agent.start_workflow("recruit.cv.parsed", {"cv": 1})
    if outcome == "cancelled":
        await eventually(lambda: any(b"+WPI" in s for s in said.values()), timeout=20)
        agent.stop()  # the step outlives the drain and is cancelled
        await asyncio.wait_for(run, 15)
    await asyncio.wait_for(handler_ended.wait(), 20)
    settlement = {"returns": is_ack, "raises": is_nak}.get(outcome)
    if settlement is not None:
        await eventually(lambda: any(settlement(s[-1]) for s in said.values()), timeout=10)
    ended = {subject: len(seen) for subject, seen in said.items()}
    await asyncio.sleep(1.5)  # a keep-alive is due every ack_wait / 4 = 0.15 s
    await raw_nats.flush()
    await observer.unsubscribe()

    (subject,) = said  # one delivery
    assert said[subject][0] == b"+WPI"  # kept alive while it ran
    assert len(said[subject]) == ended[subject]  # and nothing sent after it ended
    if settlement is not None:
        assert settlement(said[subject][-1])
