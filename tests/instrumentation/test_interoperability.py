"""Plain OpenTelemetry on one side, choreoscope on the other: one trace, both ways."""

from __future__ import annotations

import asyncio

import nats
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from instrumentation import TracedNats
from tests.instrumentation.deterministic_spans import in_memory_telemetry, only_span


def _plain_tracer() -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("plain-otel-app"), exporter


async def test_plain_opentelemetry_producer_continues_in_our_consumer(nats_server):
    tracer, plain_spans = _plain_tracer()
    telemetry, ours = in_memory_telemetry("scorer")
    got: asyncio.Queue = asyncio.Queue()
    async with await TracedNats.connect(
        nats_server.url, service_name="scorer", telemetry=telemetry
    ) as nc:
        await nc.subscribe("recruit.cv.parsed", queue="scorer", cb=got.put)
        raw = await nats.connect(nats_server.url)
        with tracer.start_as_current_span("send recruit.cv.parsed", kind=SpanKind.PRODUCER):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            await raw.publish("recruit.cv.parsed", b"{}", headers=headers)
        await asyncio.wait_for(got.get(), 10)
        await raw.close()

    [producer] = plain_spans.get_finished_spans()
    process = only_span(ours, "process recruit.cv.parsed")
    assert process["trace_id"] == f"{producer.context.trace_id:032x}"
    assert process["parent_span_id"] == f"{producer.context.span_id:016x}"
    assert process["links"] == [f"{producer.context.span_id:016x}"]


async def test_our_producer_continues_in_a_plain_opentelemetry_consumer(nats_server):
    tracer, plain_spans = _plain_tracer()
    telemetry, ours = in_memory_telemetry("parser")
    raw = await nats.connect(nats_server.url)
    sub = await raw.subscribe("recruit.cv.parsed")
    async with await TracedNats.connect(
        nats_server.url, service_name="parser", telemetry=telemetry
    ) as nc:
        await nc.publish("recruit.cv.parsed", b"{}")
        msg = await sub.next_msg(timeout=5)
    context = propagate.extract(msg.headers)
    with tracer.start_as_current_span("process", context=context, kind=SpanKind.CONSUMER):
        pass
    await raw.close()

    [consumer] = plain_spans.get_finished_spans()
    publish = only_span(ours, "publish recruit.cv.parsed")
    assert f"{consumer.context.trace_id:032x}" == publish["trace_id"]
    assert f"{consumer.parent.span_id:016x}" == publish["span_id"]
