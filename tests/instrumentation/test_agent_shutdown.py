"""A cancelled Agent leaves nothing running: no task, no socket, no asyncio error later."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from choreoscope.nats_server import EmbeddedNats
from instrumentation import Agent, TracedNats
from tests.instrumentation.deterministic_spans import eventually, in_memory_telemetry

FAST = {"fetch_timeout": 0.2, "drain_timeout": 0.5}


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What the event loop would log as errors ("Task was destroyed but it is
    pending!", "... exception was never retrieved") while the test runs."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: errors.append(context))
    yield errors
    loop.set_exception_handler(previous)


def pending_subscription_tasks() -> list[asyncio.Task]:
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and "Subscription._wait_for_msgs" in repr(task.get_coro())
    ]


def agent_with_two_handlers(url: str, delivery: str, hang: asyncio.Event) -> Agent:
    telemetry, _ = in_memory_telemetry("scorer")
    agent = Agent("scorer", delivery=delivery, nats_url=url, telemetry=telemetry, **FAST)

    @agent.on("recruit.cv.parsed")
    async def score(event):
        await hang.wait()

    @agent.on("recruit.cv.rejected")
    async def archive(event):
        pass

    return agent


async def settle_garbage() -> None:
    """Let cancelled tasks finish, then collect what is left: a pending task that
    nobody references any more is reported by asyncio as destroyed."""
    await asyncio.sleep(0.2)
    gc.collect()
    await asyncio.sleep(0.05)


@pytest.mark.parametrize("delivery", ["jetstream", "core"])
async def test_agent_cancelled_while_nats_is_down_leaves_no_task_behind(
    tmp_path, loop_errors, delivery
):
    # nats-py's close() stops half way when NATS is gone (writing pending data
    # raises), leaving every subscription's task pending for asyncio to complain about
    hang = asyncio.Event()
    hang.set()
    with EmbeddedNats(store_dir=tmp_path / "nats") as server:
        agent = agent_with_two_handlers(server.url, delivery, hang)
        run = asyncio.create_task(agent.run())
        await agent.wait_ready(timeout=10)
        await agent.start_workflow("recruit.cv.parsed", {"cv": 1})
        counters = agent.counters
        await eventually(lambda: counters.processed == 1)
        await asyncio.to_thread(server.stop)
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(run, 10)
    assert run.cancelled()
    assert pending_subscription_tasks() == []
    del agent
    await settle_garbage()
    assert [error["message"] for error in loop_errors] == []


@pytest.mark.parametrize("delivery", ["jetstream", "core"])
async def test_agent_cancelled_again_while_draining_still_closes_its_connection(
    nats_server, loop_errors, delivery
):
    hang = asyncio.Event()  # a step that never ends, so the drain waits for it
    agent = agent_with_two_handlers(nats_server.url, delivery, hang)
    run = asyncio.create_task(agent.run())
    await agent.wait_ready(timeout=10)
    await agent.start_workflow("recruit.cv.parsed", {"cv": 1})
    counters = agent.counters
    await eventually(lambda: counters.in_flight == 1)
    nc = agent._nc
    run.cancel()
    await asyncio.sleep(0.05)  # now draining, waiting for the hung step
    run.cancel()  # Ctrl-C twice
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(run, 10)
    assert run.cancelled()
    assert nc.is_closed
    assert counters.in_flight == 0
    assert pending_subscription_tasks() == []
    del agent, nc
    await settle_garbage()
    assert [error["message"] for error in loop_errors] == []


async def test_cancelling_a_traced_clients_drain_closes_it_without_asyncio_errors(
    nats_server, loop_errors
):
    # nats-py's drain, cancelled while a subscription still works on a message,
    # leaves "_GatheringFuture exception was never retrieved" behind
    telemetry, _ = in_memory_telemetry("billing")
    nc = await TracedNats.connect(nats_server.url, service_name="billing", telemetry=telemetry)
    working = asyncio.Event()

    async def slow(msg) -> None:
        working.set()
        await asyncio.sleep(1)

    await nc.subscribe("orders.placed", cb=slow)
    await nc.publish("orders.placed", b"{}")
    await asyncio.wait_for(working.wait(), 10)
    draining = asyncio.create_task(nc.drain())
    await asyncio.sleep(0.1)
    draining.cancel()
    with pytest.raises(asyncio.CancelledError):
        await draining  # the cancellation reaches the caller (nats-py swallows it)
    assert nc.nc.is_closed
    del nc
    await settle_garbage()
    assert [error["message"] for error in loop_errors] == []
