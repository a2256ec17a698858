"""An Agent's own spans (light spans) encode into the columnar batch exactly as
they are: the encoder reads them column by column, not through the SDK's API."""

from __future__ import annotations

import json

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from instrumentation import Agent, semconv
from instrumentation.columnar_encoding import decode_columnar_batch, encode_columnar_batch
from instrumentation.light_span import LightSpan
from tests.instrumentation.deterministic_spans import eventually, in_memory_telemetry

FAST = {"fetch_timeout": 0.2, "drain_timeout": 5}
OTLP_STATUS = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}


async def test_agent_spans_with_errors_events_and_links_encode_column_by_column(
    nats_server, run_agents
):
    telemetry, exporter = in_memory_telemetry("scorer")
    agent = Agent("scorer", delivery="core", nats_url=nats_server.url, telemetry=telemetry, **FAST)

    @agent.on("recruit.cv.parsed")
    async def score(event):
        if event.data["fail"]:
            raise ValueError("unreadable CV")
        await event.emit("recruit.cv.scored", {"score": 0.8})

    await run_agents(agent)
    await agent.start_workflow("recruit.cv.parsed", {"fail": False})
    await agent.start_workflow("recruit.cv.parsed", {"fail": True})
    await eventually(lambda: agent.counters.processed == 1 and agent.counters.dead_lettered == 1)

    spans = [s for s in exporter.get_finished_spans() if type(s) is LightSpan]
    assert sorted(s.name for s in spans) == sorted(
        ["publish recruit.cv.parsed", "receive recruit.cv.parsed", "process recruit.cv.parsed"] * 2
        + ["publish recruit.cv.scored", "publish dlq.recruit.cv.parsed"]
    )
    batch = decode_columnar_batch(encode_columnar_batch(spans))

    assert batch["n"] == len(spans)
    assert batch["resource"][semconv.SERVICE_NAME] == "scorer"
    for i, span in enumerate(spans):
        context, parent = span.get_span_context(), span.parent
        assert batch["name"][i] == span.name
        assert batch["trace_id"][i] == f"{context.trace_id:032x}"
        assert batch["span_id"][i] == f"{context.span_id:016x}"
        assert batch["parent_span_id"][i] == (f"{parent.span_id:016x}" if parent else None)
        assert batch["kind"][i] == span.kind.value + 1
        assert (batch["start_ns"][i], batch["end_ns"][i]) == (span.start_time, span.end_time)
        assert batch["status_code"][i] == OTLP_STATUS[span.status.status_code]
        assert batch["status_message"][i] == span.status.description
        assert batch["scope"][i] == span.instrumentation_scope.name
        attributes = dict(span.attributes)
        assert json.loads(batch["attributes"][i]) == attributes
        assert batch["workflow_id"][i] == attributes.get(semconv.CHOREO_WORKFLOW_ID)
        assert batch["subject"][i] == attributes.get(semconv.MESSAGING_DESTINATION_NAME)
        assert batch["message_id"][i] == attributes.get(semconv.MESSAGING_MESSAGE_ID)
        assert batch["operation"][i] == attributes.get(semconv.MESSAGING_OPERATION_TYPE)
        assert batch["consumer_group"][i] == attributes.get(semconv.MESSAGING_CONSUMER_GROUP)
        events = json.loads(batch["events"][i]) if batch["events"][i] else []
        assert [e["name"] for e in events] == [e.name for e in span.events]
        links = json.loads(batch["links"][i]) if batch["links"][i] else []
        assert [(link["trace_id"], link["span_id"]) for link in links] == [
            (f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}") for link in span.links
        ]

    failed = [i for i, code in enumerate(batch["status_code"]) if code == 2]
    assert [batch["name"][i] for i in failed] == ["process recruit.cv.parsed"]
    assert "unreadable CV" in batch["status_message"][failed[0]]
    assert "exception" in batch["events"][failed[0]]


def test_attribute_values_fast_json_refuses_still_encode_as_json():
    # orjson takes neither ints beyond 64 bits nor keys that are not text: such a
    # batch is written by the standard library instead, with the same JSON
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    tracer.start_span("plain", attributes={"n": 1, "text": "é"}).end()
    tracer.start_span("huge", attributes={"n": 2**70, "ratio": 0.82}).end()
    spans = exporter.get_finished_spans()
    batch = decode_columnar_batch(encode_columnar_batch(spans))
    assert [json.loads(text) for text in batch["attributes"]] == [
        {"n": 1, "text": "é"},
        {"n": 2**70, "ratio": 0.82},
    ]
    assert batch["attributes"][0] == '{"n":1,"text":"é"}'
