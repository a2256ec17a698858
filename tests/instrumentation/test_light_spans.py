"""choreoscope's messaging spans behave like SDK spans for processors and handlers."""

from __future__ import annotations

import asyncio

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor

from instrumentation import Agent
from tests.instrumentation.deterministic_spans import eventually, in_memory_telemetry, only_span

FAST = {"fetch_timeout": 0.2, "drain_timeout": 5}


class StartRecorder(SpanProcessor):
    def __init__(self) -> None:
        self.started: list[str] = []

    def on_start(self, span, parent_context=None) -> None:
        self.started.append(span.name)
        span.set_attribute("tenant", "acme")


async def test_processors_see_on_start_and_handlers_annotate_their_process_span(
    nats_server, run_agents
):
    telemetry, spans = in_memory_telemetry("scorer")
    recorder = StartRecorder()
    telemetry.tracer_provider.add_span_processor(recorder)
    agent = Agent("scorer", nats_url=nats_server.url, telemetry=telemetry, **FAST)
    done = asyncio.Event()

    @agent.on("recruit.cv.parsed")
    async def score(event):
        span = trace.get_current_span()
        span.set_attribute("score", 0.82)
        span.set_attribute("not.an.attribute", object())  # dropped, as the SDK does
        with telemetry.tracer.start_as_current_span("call model"):
            pass
        done.set()

    await run_agents(agent)
    await agent.start_workflow("recruit.cv.parsed", {})
    await asyncio.wait_for(done.wait(), 10)
    await eventually(lambda: "ack recruit.cv.parsed" in recorder.started)

    process = only_span(spans, "process recruit.cv.parsed")
    assert process["attributes"]["score"] == 0.82
    assert process["attributes"]["tenant"] == "acme"
    assert "not.an.attribute" not in process["attributes"]
    assert only_span(spans, "call model")["parent_span_id"] == process["span_id"]
    assert {"publish recruit.cv.parsed", "receive recruit.cv.parsed"} <= set(recorder.started)
