"""A nak's settle span says when the redelivery is due (``choreo.nak.delay_ms``), so
the correlator waits for a retry scheduled past the step's deadline instead of
calling the attempt failed."""

from __future__ import annotations

from typing import Any

from nats.js.api import ConsumerConfig
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from instrumentation import Agent, Telemetry, TracedNats, semconv
from instrumentation.columnar_encoding import decode_columnar_batch, encode_columnar_batch
from instrumentation.messaging_spans import MessagingSpans
from tests.instrumentation.deterministic_spans import (
    eventually,
    in_memory_telemetry,
    only_span,
    spans_named,
)

FAST = {"fetch_timeout": 0.2, "heartbeat_interval": 5, "drain_timeout": 5, "ack_wait": 5}


async def test_agent_nak_records_the_backoff_before_the_redelivery(nats_server, run_agents):
    telemetry, exporter = in_memory_telemetry("scorer")
    agent = Agent(
        "scorer", nats_url=nats_server.url, telemetry=telemetry, backoff=(0.05, 0.2),
        max_deliveries=5, **FAST,
    )  # fmt: skip
    attempts = []

    @agent.on("recruit.cv.parsed")
    async def score(event):
        attempts.append(event.attempt)
        if event.attempt < 3:
            raise RuntimeError("model timed out")

    await run_agents(agent)
    await agent.start_workflow("recruit.cv.parsed", {"cv": 1})
    await eventually(lambda: attempts == [1, 2, 3] and agent.counters.processed == 1)

    naks = spans_named(exporter, "nak recruit.cv.parsed")
    assert [n["attributes"][semconv.CHOREO_NAK_DELAY_MS] for n in naks] == [50.0, 200.0]
    # and the exporter's columnar batch carries it as a column the collector stores
    batch = decode_columnar_batch(encode_columnar_batch(exporter.get_finished_spans()))
    delays = dict(zip(batch["name"], batch["nak_delay_ms"], strict=True))
    assert delays["nak recruit.cv.parsed"] == 200.0
    assert delays["process recruit.cv.parsed"] is None


async def test_traced_message_nak_with_a_delay_records_it(nats_server):
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
        [first] = await psub.fetch(1, timeout=5)
        await first.nak(delay=0.1)
        [second] = await psub.fetch(1, timeout=5)
        await second.nak()

    first_nak, second_nak = spans_named(exporter, "nak recruit.cv.parsed")
    assert first_nak["attributes"][semconv.CHOREO_NAK_DELAY_MS] == 100.0
    assert semconv.CHOREO_NAK_DELAY_MS not in second_nak["attributes"]  # no delay asked


class _OtherProvider(trace.TracerProvider):
    """A provider that is not the SDK's: spans go through its tracer's API, not the
    light spans path."""

    def __init__(self, sdk: TracerProvider) -> None:
        self._sdk = sdk

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return self._sdk.get_tracer(*args, **kwargs)


def test_nak_delay_travels_on_spans_made_through_the_tracer_api() -> None:
    exporter = InMemorySpanExporter()
    sdk = TracerProvider()
    sdk.add_span_processor(SimpleSpanProcessor(exporter))
    spans = MessagingSpans(Telemetry("scorer", tracer_provider=_OtherProvider(sdk)))

    spans.settle("nak", "recruit.cv.parsed", parent=None, nak_delay_s=1.5)

    nak = only_span(exporter, "nak recruit.cv.parsed")
    assert nak["attributes"][semconv.CHOREO_NAK_DELAY_MS] == 1500.0
    batch = decode_columnar_batch(encode_columnar_batch(exporter.get_finished_spans()))
    assert batch["nak_delay_ms"] == [1500.0]
