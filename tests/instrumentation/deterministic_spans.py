"""Deterministic spans for assertions: fixed id and time generators, in-memory export."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

from instrumentation import Telemetry, configure

START_NS = 1_700_000_000_000_000_000


class SequentialIds(IdGenerator):
    """Trace ids and span ids 1, 2, 3, ...: the same run gives the same ids."""

    def __init__(self) -> None:
        self._traces = itertools.count(1)
        self._spans = itertools.count(1)

    def generate_trace_id(self) -> int:
        return next(self._traces)

    def generate_span_id(self) -> int:
        return next(self._spans)


class TickingClock:
    """Each reading is one millisecond after the previous one."""

    def __init__(self) -> None:
        self._ticks = itertools.count()

    def __call__(self) -> int:
        return START_NS + next(self._ticks) * 1_000_000


def in_memory_telemetry(service_name: str) -> tuple[Telemetry, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    telemetry = configure(
        service_name=service_name,
        export=False,
        install_global=False,
        id_generator=SequentialIds(),
        clock=TickingClock(),
        span_processors=[SimpleSpanProcessor(exporter)],
    )
    return telemetry, exporter


def span_dict(span: Any) -> dict[str, Any]:
    """A finished span as a plain dict that tests compare."""
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "links": [f"{link.context.span_id:016x}" for link in span.links],
        "events": [event.name for event in span.events],
    }


def spans_named(exporter: InMemorySpanExporter, name: str) -> list[dict[str, Any]]:
    return [span_dict(s) for s in exporter.get_finished_spans() if s.name == name]


def only_span(exporter: InMemorySpanExporter, name: str) -> dict[str, Any]:
    found = spans_named(exporter, name)
    assert len(found) == 1, f"expected one span {name!r}, got {len(found)}: " + ", ".join(
        s.name for s in exporter.get_finished_spans()
    )
    return found[0]


async def eventually(predicate, *, timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` is true; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def read_stream(js, stream: str, subject: str, *, wait: float = 0.3) -> list:
    """Every message on ``subject`` stored in ``stream``, read by an ephemeral consumer."""
    sub = await js.pull_subscribe(subject, stream=stream)
    messages = []
    while True:
        try:
            messages.extend(await sub.fetch(100, timeout=wait))
        except TimeoutError:
            break
    await sub.unsubscribe()
    return messages
