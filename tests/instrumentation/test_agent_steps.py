"""Steps run in shared worker tasks, yet behave as if each had its own task."""

from __future__ import annotations

import asyncio

import pytest

from instrumentation import Agent
from tests.instrumentation.deterministic_spans import eventually, in_memory_telemetry

FAST = {"fetch_timeout": 0.2, "drain_timeout": 5}


@pytest.mark.parametrize("delivery", ["jetstream", "core"])
async def test_steps_that_wait_run_concurrently_up_to_max_in_flight(
    nats_server, run_agents, delivery
):
    telemetry, _ = in_memory_telemetry("worker")
    agent = Agent(
        "worker",
        delivery=delivery,
        nats_url=nats_server.url,
        telemetry=telemetry,
        max_in_flight=4,
        **FAST,
    )
    release = asyncio.Event()
    waiting: list[int] = []
    done: list[int] = []

    @agent.on("jobs.slow")
    async def slow(event):
        waiting.append(event.data["n"])
        await release.wait()
        done.append(event.data["n"])

    await run_agents(agent)
    for number in range(10):
        await agent.start_workflow("jobs.slow", {"n": number})
    await eventually(lambda: len(waiting) == 4)
    await asyncio.sleep(0.2)
    assert len(waiting) == 4  # the limit holds while they wait
    release.set()
    await eventually(lambda: sorted(done) == list(range(10)))
    assert agent.counters.in_flight == 0


async def test_a_handlers_own_timeout_cancels_only_its_own_step(nats_server, run_agents):
    telemetry, _ = in_memory_telemetry("worker")
    agent = Agent("worker", delivery="core", nats_url=nats_server.url, telemetry=telemetry, **FAST)
    handled: list[int] = []

    @agent.on("jobs.mixed")
    async def mixed(event):
        n = event.data["n"]
        if n == 0:
            async with asyncio.timeout(0.05):  # taken in this step's task
                await asyncio.sleep(5)
        else:
            await asyncio.sleep(0.2)  # still waiting when step 0 times out
        handled.append(n)

    await run_agents(agent)
    for number in range(4):
        await agent.start_workflow("jobs.mixed", {"n": number})
    await eventually(lambda: sorted(handled) == [1, 2, 3])
    assert agent.counters.failed == 1 and agent.counters.processed == 3
    await agent.start_workflow("jobs.mixed", {"n": 4})  # the agent goes on
    await eventually(lambda: 4 in handled)


async def test_a_handler_that_raises_cancelled_error_does_not_stop_the_agent(
    nats_server, run_agents
):
    telemetry, _ = in_memory_telemetry("worker")
    agent = Agent("worker", delivery="core", nats_url=nats_server.url, telemetry=telemetry, **FAST)
    handled: list[int] = []

    @agent.on("jobs.odd")
    async def odd(event):
        if event.data["n"] == 0:
            raise asyncio.CancelledError  # a library giving up, not the agent stopping
        handled.append(event.data["n"])

    await run_agents(agent)
    for number in range(3):
        await agent.start_workflow("jobs.odd", {"n": number})
    await eventually(lambda: sorted(handled) == [1, 2])
    assert agent.counters.in_flight == 0
