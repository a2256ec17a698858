"""Fixtures of the instrumentation tests: a connected raw client and running agents."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import nats
import pytest

from instrumentation import Agent


@pytest.fixture
async def raw_nats(nats_server) -> AsyncIterator[nats.aio.client.Client]:
    """A plain, untraced nats-py client: what a foreign producer or an observer uses."""
    nc = await nats.connect(nats_server.url)
    yield nc
    await nc.close()


@pytest.fixture
async def run_agents() -> AsyncIterator[Callable[..., asyncio.Task]]:
    """Start ``agent.run()`` in the background, ready; every agent is stopped at the end."""
    started: list[tuple[Agent, asyncio.Task]] = []

    async def start(agent: Agent) -> asyncio.Task:
        task = asyncio.create_task(agent.run())
        started.append((agent, task))
        await agent.wait_ready(timeout=10)
        return task

    yield start
    for agent, _ in started:
        agent.stop()
    for _, task in started:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 15)
