"""OTLP/HTTP exports larger than one NATS message (its ``max_payload``, 1 MiB by
default) but within the receiver's body limit: split, stored whole, never refused."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

from choreoscope.nats_server import EmbeddedNats
from tests.collector.batches import otlp_json_request, otlp_request
from tests.collector.collector_harness import query, running_collector, wait_for_count
from tests.collector.test_otlp_http import PROTOBUF, post, receiver

PROMPT = "p" * 6000  # an LLM prompt kept on each span: 300 of them make ~1.9 MB


async def test_a_stock_sdk_batch_over_one_nats_message_is_stored_whole(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # was: 413 ("over the NATS max_payload"), and the SDK dropped all 300 spans
    class RecordingExporter(OTLPSpanExporter):
        results: ClassVar[list[SpanExportResult]] = []

        def export(self, spans):
            self.results.append(super().export(spans))
            return self.results[-1]

    data = tmp_path / "data"
    async with receiver(nats_server.url) as server, running_collector(nats_server.url, data):
        exporter = RecordingExporter(endpoint=f"http://127.0.0.1:{server.port}/v1/traces")
        provider = TracerProvider(resource=Resource.create({"service.name": "screener"}))
        provider.add_span_processor(
            BatchSpanProcessor(exporter, max_export_batch_size=300, schedule_delay_millis=60_000)
        )
        tracer = provider.get_tracer("stock-sdk")
        for i in range(300):
            with tracer.start_as_current_span("process recruit.cv.parsed") as span:
                span.set_attribute("gen_ai.prompt", PROMPT)
                span.set_attribute("messaging.message.id", f"m-{i}")
        await asyncio.to_thread(provider.shutdown)
        assert exporter.results == [SpanExportResult.SUCCESS]
        assert await wait_for_count(data, "select count(*) from spans", 300) == 300
    assert query(data, "select count(*), count(distinct message_id) from spans_raw") == [(300, 300)]


async def test_a_large_json_export_is_stored_whole_and_its_retry_is_not_stored_twice(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    request = otlp_json_request(0, 300)
    for span in request["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        span["attributes"].append({"key": "gen_ai.prompt", "value": {"stringValue": PROMPT}})
    body = json.dumps(request).encode()
    assert len(body) > 1024 * 1024
    data = tmp_path / "data"
    async with receiver(nats_server.url) as server, running_collector(nats_server.url, data):
        for _ in range(2):  # an SDK retrying after a lost answer
            status, _, answer = await post(server, body, content_type="application/json")
            assert (status, json.loads(answer)) == (200, {})
        assert await wait_for_count(data, "select count(*) from spans", 300) == 300
        # the retry's parts were dropped by JetStream, not stored again
        await asyncio.sleep(1.0)
    assert query(data, "select count(*) from spans_raw") == [(300,)]
    assert query(data, "select count(*) from rejected") == [(0,)]


async def test_a_span_too_large_for_a_message_alone_is_refused_by_name_and_the_others_kept(
    nats_server: EmbeddedNats, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="collector")
    request = otlp_request(0, 5)
    spans = request.resource_spans[0].scope_spans[0].spans
    huge = spans[2].attributes.add()
    huge.key, huge.value.string_value = "blob", "b" * (2 * 1024 * 1024)
    data = tmp_path / "data"
    async with receiver(nats_server.url) as server, running_collector(nats_server.url, data):
        status, _, answer = await post(server, request.SerializeToString(), content_type=PROTOBUF)
        assert status == 200
        partial = ExportTraceServiceResponse.FromString(answer).partial_success
        assert partial.rejected_spans == 1
        assert "1 span(s) over the NATS max_payload (1048576 bytes)" in partial.error_message
        assert await wait_for_count(data, "select count(*) from spans", 4) == 4
    assert query(data, "select span_id from spans order by span_id") == [
        (f"{i:016x}",) for i in (1, 2, 4, 5)
    ]
    warnings = [r.getMessage() for r in caplog.records if "max_payload" in r.getMessage()]
    assert len(warnings) == 1 and "the other spans of the export are stored" in warnings[0]


async def test_partial_success_says_of_each_span_only_what_is_true_of_it(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # was: the span too large alone was also said to be "stored" with its attributes
    # truncated, and one too large and with a bad id was counted twice
    request = otlp_request(0, 6)
    spans = request.resource_spans[0].scope_spans[0].spans
    for i in (1, 4):  # too large for a message on their own; 4 has a bad id too
        huge = spans[i].attributes.add()
        huge.key, huge.value.string_value = "blob", "b" * (2 * 1024 * 1024)
    spans[4].span_id = b"\x00" * 8
    long = spans[2].attributes.add()  # over the attribute cap: truncated, and stored
    long.key, long.value.string_value = "prompt", "p" * 20_000
    data = tmp_path / "data"
    async with receiver(nats_server.url) as server, running_collector(nats_server.url, data):
        status, _, answer = await post(server, request.SerializeToString(), content_type=PROTOBUF)
        assert status == 200
        partial = ExportTraceServiceResponse.FromString(answer).partial_success
        assert partial.rejected_spans == 2, partial.error_message
        told = partial.error_message
        assert "2 span(s) over the NATS max_payload (1048576 bytes)" in told
        assert told.count("attribute values truncated") == 1, told  # span 2's alone
        assert "(keys: prompt)" in told and "blob" not in told
        assert "span_id" not in told  # span 4 never reached the decoder that says so
        assert await wait_for_count(data, "select count(*) from spans", 4) == 4
    assert query(data, "select span_id from spans order by span_id") == [
        (f"{i:016x}",) for i in (1, 3, 4, 6)
    ]


async def test_a_body_over_the_receivers_limit_gets_a_413_not_a_connection_reset(
    nats_server: EmbeddedNats,
) -> None:
    # was: the receiver answered and closed before reading the body, and a client that
    # sends the body without waiting for "100 Continue" (urllib; the SDK's requests
    # session) got a connection reset instead of the 413
    body = b"\x00" * 9_000_000  # over the receiver's 8 MiB
    async with receiver(nats_server.url) as server:
        status, _, answer = await post(server, body, content_type=PROTOBUF)
        assert status == 413
        assert b"request body over 8388608 bytes: send smaller batches" in answer

        def post_with_requests(data: bytes | Iterator[bytes]) -> requests.Response:
            return requests.post(
                f"http://127.0.0.1:{server.port}/v1/traces", data=data,
                headers={"Content-Type": PROTOBUF}, timeout=10,
            )  # fmt: skip

        # chunked: read as it comes until over the limit, and the rest (MBs more) left
        chunks = (body[: 2**20] for _ in range(24))
        for data in (body, chunks):
            answered = await asyncio.to_thread(post_with_requests, data)
            assert answered.status_code == 413
            assert "send smaller batches" in answered.text
        # and the receiver still serves the next request
        status, _, _ = await post(
            server, otlp_request(0, 2).SerializeToString(), content_type=PROTOBUF
        )
        assert status == 200
