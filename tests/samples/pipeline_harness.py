"""Running a sample pipeline in the test's event loop, and reading what it put on the bus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import nats
from nats.js.errors import NotFoundError

from instrumentation import wire
from samples.pipeline import Pipeline, PipelineOptions, PipelineRunner


@dataclass(frozen=True)
class BusEvent:
    subject: str
    workflow_id: str | None
    message_id: str | None
    data: Any
    headers: dict[str, str]


@contextlib.asynccontextmanager
async def running(pipeline: Pipeline, options: PipelineOptions) -> AsyncIterator[PipelineRunner]:
    """The pipeline's agents and traffic, running until the block ends."""
    runner = PipelineRunner(pipeline, options)
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def stream_events(url: str, stream: str = wire.EVENTS_STREAM) -> list[BusEvent]:
    """Every message stored in ``stream``, in order."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            return []
        events = []
        # a stream just made holds nothing yet: first and last seq are 0, which no
        # message has (asked for it, JetStream answers "bad request")
        for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            try:
                msg = await js.get_msg(stream, seq)
            except NotFoundError:
                continue
            headers = dict(msg.headers or {})
            events.append(
                BusEvent(
                    subject=msg.subject,
                    workflow_id=headers.get(wire.WORKFLOW_ID),
                    message_id=headers.get(wire.MSG_ID),
                    data=json.loads(msg.data) if msg.data else None,
                    headers=headers,
                )
            )
        return events
    finally:
        await nc.close()


def by_workflow(events: list[BusEvent]) -> dict[str | None, list[BusEvent]]:
    grouped: dict[str | None, list[BusEvent]] = defaultdict(list)
    for event in events:
        grouped[event.workflow_id].append(event)
    return grouped


async def wait_for(
    condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "the condition"
) -> None:
    """Poll an async ``condition()`` until it is true; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
