"""The OTLP/HTTP receiver: stock OTLP exports (protobuf or JSON, gzip or not) reach
the store, with the status codes and partial-success answers of the OTLP spec."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import nats
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

from choreoscope.nats_server import EmbeddedNats
from collector.http_server import HttpServer, Request, Response
from collector.otlp_http import OtlpHttpReceiver
from collector.streams import ensure_stream
from instrumentation import wire
from store.schema import RAW_CAP_BYTES
from tests.collector.batches import otlp_json_request, otlp_request
from tests.collector.collector_harness import query, running_collector, wait_for_count

PROTOBUF = "application/x-protobuf"


@contextlib.asynccontextmanager
async def receiver(url: str, **limits: int) -> AsyncIterator[OtlpHttpReceiver]:
    nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    await ensure_stream(
        nc.jetstream(), name=wire.SPANS_STREAM, subjects=[wire.SPANS_SUBJECTS], replicas=1,
        max_age=3600, max_bytes=2**30,
    )  # fmt: skip
    server = OtlpHttpReceiver(nc=nc, port=0, publish_timeout=1.0, **limits)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        await nc.close()


async def post(
    server: OtlpHttpReceiver | HttpServer, body: bytes, *, content_type: str, gzipped: bool = False
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": content_type}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/v1/traces", data=body, headers=headers, method="POST"
    )

    def send() -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    return await asyncio.to_thread(send)


async def test_stock_otlp_protobuf_and_gzipped_json_exports_reach_the_store(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with receiver(nats_server.url) as server, running_collector(nats_server.url, data):
        status, headers, body = await post(
            server, otlp_request(0, 20).SerializeToString(), content_type=PROTOBUF
        )
        assert status == 200 and headers["Content-Type"] == PROTOBUF
        assert not ExportTraceServiceResponse.FromString(body).HasField("partial_success")
        as_json = gzip.compress(json.dumps(otlp_json_request(20, 20)).encode())
        status, headers, body = await post(
            server, as_json, content_type="application/json", gzipped=True
        )
        assert (status, json.loads(body)) == (200, {})
        assert await wait_for_count(data, "select count(*) from spans", 40) == 40
    assert query(data, "select distinct scope_name from spans") == [("stock-sdk",)]


async def test_export_with_some_bad_spans_gets_partial_success_and_keeps_the_good(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    request = otlp_request(0, 5)
    request.resource_spans[0].scope_spans[0].spans[3].span_id = b"\x00" * 8
    async with receiver(nats_server.url) as server, running_collector(nats_server.url, data):
        status, _, body = await post(server, request.SerializeToString(), content_type=PROTOBUF)
        assert status == 200
        partial = ExportTraceServiceResponse.FromString(body).partial_success
        assert partial.rejected_spans == 1
        assert "span_id is not 16 hex characters, or is all zeros" in partial.error_message
        assert await wait_for_count(data, "select count(*) from spans", 4) == 4
        assert await wait_for_count(data, "select count(*) from rejected", 1) == 1


async def test_malformed_export_gets_400_and_is_kept_in_rejected(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with receiver(nats_server.url) as server, running_collector(nats_server.url, data):
        status, _, body = await post(
            server, b'{"resourceSpans": [{', content_type="application/json"
        )
        assert status == 400
        assert json.loads(body)["message"].startswith("malformed application/json payload")
        assert await wait_for_count(data, "select count(*) from rejected", 1) == 1
    assert query(data, "select source, raw from rejected") == [
        ("nats:choreo.spans.otlp-http", b'{"resourceSpans": [{')
    ]


async def test_oversized_body_and_gzip_bomb_get_413_and_the_log_says_so(
    nats_server: EmbeddedNats, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="collector")
    async with receiver(
        nats_server.url, max_body_bytes=64 * 1024, max_decompressed_bytes=1024 * 1024
    ) as server:
        status, _, _ = await post(server, b"\x00" * 100_000, content_type=PROTOBUF)
        assert status == 413
        bomb = gzip.compress(b"\x00" * 50_000_000)  # 50 MB of zeros in ~50 KB
        assert len(bomb) < 64 * 1024
        status, _, body = await post(server, bomb, content_type=PROTOBUF, gzipped=True)
        assert status == 413
        assert b"decompressed body over 1048576 bytes" in body
    # the client drops what got a 413 and none of it reaches the store: the log tells
    refusals = [r.getMessage() for r in caplog.records if "413" in r.getMessage()]
    assert len(refusals) == 2, refusals
    assert "body over 65536 bytes from 127.0.0.1" in refusals[0]
    assert "decompressed body over 1048576 bytes" in refusals[1]
    assert all("exporter must send smaller batches" in r for r in refusals)


async def test_unsupported_content_type_gets_415_and_other_paths_404(
    nats_server: EmbeddedNats,
) -> None:
    async with receiver(nats_server.url) as server:
        assert (await post(server, b"spans", content_type="text/plain"))[0] == 415
        request = urllib.request.Request(f"http://127.0.0.1:{server.port}/v1/metrics", data=b"")
        with pytest.raises(urllib.error.HTTPError) as raised:
            await asyncio.to_thread(urllib.request.urlopen, request, timeout=5)
        assert raised.value.code == 404


async def test_jetstream_down_gets_503_with_retry_after(nats_server: EmbeddedNats) -> None:
    async with receiver(nats_server.url) as server:
        nats_server.stop()
        status, headers, _ = await post(
            server, otlp_request(0, 3).SerializeToString(), content_type=PROTOBUF
        )
        assert status == 503
        assert int(headers["Retry-After"]) > 0
        nats_server.start()


async def test_exports_refused_unread_and_a_nats_outage_are_logged_once_not_per_request(
    nats_server: EmbeddedNats, caplog: pytest.LogCaptureFixture
) -> None:
    # were: no log line for a 415 or a body that is not the gzip it says (nothing of
    # either reaches rejected), and a warning per request while NATS was away
    caplog.set_level(logging.WARNING, logger="collector")
    good = otlp_request(0, 3).SerializeToString()
    async with receiver(nats_server.url) as server:
        for _ in range(3):
            assert (await post(server, b"spans", content_type="text/plain"))[0] == 415
            assert (await post(server, good, content_type=PROTOBUF, gzipped=True))[0] == 400
        nats_server.stop()
        for _ in range(5):
            assert (await post(server, good, content_type=PROTOBUF))[0] == 503
        nats_server.start()
    logged = [r.getMessage() for r in caplog.records if "OTLP/HTTP" in r.getMessage()]
    assert len(logged) == 3, logged
    assert "refused an export with 415 (Content-Type 'text/plain'); nothing of it" in logged[0]
    assert "must send OTLP protobuf or JSON" in logged[0]
    assert (
        "refused an export with 400 (Content-Encoding gzip, but the body is not gzip" in (logged[1])
    )
    assert "answering 503, which the SDK retries: not connected to NATS" in logged[2]


@pytest.mark.parametrize("compression", [Compression.Gzip, Compression.NoCompression])
async def test_the_stock_opentelemetry_otlp_http_exporter_delivers_into_the_store(
    nats_server: EmbeddedNats, tmp_path: Path, compression: Compression
) -> None:
    class RecordingExporter(OTLPSpanExporter):
        results: ClassVar[list[SpanExportResult]] = []  # a new class per test

        def export(self, spans):
            self.results.append(super().export(spans))
            return self.results[-1]

    data = tmp_path / "data"
    async with receiver(nats_server.url) as server, running_collector(nats_server.url, data):
        exporter = RecordingExporter(
            endpoint=f"http://127.0.0.1:{server.port}/v1/traces", compression=compression
        )
        provider = TracerProvider(resource=Resource.create({"service.name": "billing"}))
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
        tracer = provider.get_tracer("stock-sdk")
        for i in range(25):
            with tracer.start_as_current_span("process orders.paid") as span:
                span.set_attribute("messaging.destination.name", "orders.paid")
                span.set_attribute("messaging.message.id", f"m-{i}")
        await asyncio.to_thread(provider.shutdown)
        assert exporter.results
        assert all(r == SpanExportResult.SUCCESS for r in exporter.results)
        assert await wait_for_count(data, "select count(*) from spans", 25) == 25
    assert query(data, "select distinct service_name, subject from spans") == [
        ("billing", "orders.paid")
    ]


async def test_export_the_decoder_chokes_on_gets_400_saying_why_and_is_kept_in_rejected(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    nested = b"[" * 100_000  # the JSON reader gives up on it
    keyless = json.dumps(
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [{"value": {}}]}]}]}]}
    ).encode()
    async with receiver(nats_server.url) as server, running_collector(nats_server.url, data):
        status, _, body = await post(server, nested, content_type="application/json")
        assert status == 400
        assert "nested too deeply" in json.loads(body)["message"]
        # one span of an unexpected shape: the export is taken, that span refused
        status, _, body = await post(server, keyless, content_type="application/json")
        assert status == 200
        refused = json.loads(body)["partialSuccess"]
        assert refused["rejectedSpans"] == 1 and "lacks 'key'" in refused["errorMessage"]
        assert await wait_for_count(data, "select count(*) from rejected", 2) == 2
    assert query(data, "select raw from rejected order by size desc")[0] == (
        nested[:RAW_CAP_BYTES],
    )


async def test_a_handler_that_raises_gets_a_500_saying_what_failed() -> None:
    async def handler(request: Request) -> Response:
        raise RuntimeError("decoder exploded")

    server = HttpServer(handler=handler, host="127.0.0.1", port=0, max_body_bytes=1024)
    await server.start()
    try:
        status, headers, body = await post(server, b"{}", content_type="application/json")
    finally:
        await server.stop()
    assert status == 500 and headers["Content-Type"] == "text/plain"
    assert body == b"internal error handling the request: RuntimeError: decoder exploded\n"


async def _ok(request: Request) -> Response:
    return Response(200, b"ok")


@contextlib.asynccontextmanager
async def _plain_server(**limits: float) -> AsyncIterator[HttpServer]:
    server = HttpServer(handler=_ok, host="127.0.0.1", port=0, max_body_bytes=1024, **limits)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """All the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), timeout=10)


async def test_a_connection_left_idle_or_a_request_left_half_sent_is_closed() -> None:
    # a client gone without closing its keep-alive connection, or stalled mid-request,
    # held it open for ever: a long-running receiver ran out of file descriptors
    async with _plain_server(idle_timeout_s=0.2, request_timeout_s=0.2) as server:
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
        half_reader, half_writer = await asyncio.open_connection("127.0.0.1", server.port)
        half_writer.write(b"POST /v1/traces HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        await half_writer.drain()

        assert await _answer(idle_reader) == b""
        late = await _answer(half_reader)
        # a request sent in time on a fresh connection is still answered
        status, _, body = await post(server, b"{}", content_type="application/json")
    for writer in (idle_writer, half_writer):
        writer.close()
    assert late.startswith(b"HTTP/1.1 408 ") and b"not received within 0.2 s" in late
    assert (status, body) == (200, b"ok")


async def test_connections_over_the_limit_get_a_503_with_retry_after() -> None:
    async with _plain_server(max_connections=2) as server:
        held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
        await asyncio.sleep(0.1)  # both accepted
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        refused = await _answer(reader)
        writer.close()
        for _, w in held:
            w.close()
            await w.wait_closed()
        for _ in range(50):  # once the server has seen them go, a client gets in
            status, _, _ = await post(server, b"{}", content_type="application/json")
            if status == 200:
                break
            await asyncio.sleep(0.1)
    assert refused.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in refused
    assert status == 200


async def test_a_body_of_several_gzip_members_is_stored_whole(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # concatenated OTLP protobuf requests are one request holding both span lists:
    # reading only the first gzip member answered 200 and dropped the second's spans
    data = tmp_path / "data"
    first, second = otlp_request(0, 5), otlp_request(5, 7)
    body = gzip.compress(first.SerializeToString()) + gzip.compress(second.SerializeToString())
    async with receiver(nats_server.url) as server, running_collector(nats_server.url, data):
        status, _, _ = await post(server, body, content_type=PROTOBUF, gzipped=True)
        assert status == 200
        assert await wait_for_count(data, "select count(*) from spans", 12, timeout=10) == 12
        status, _, body = await post(
            server, gzip.compress(b"x") + b"not gzip", content_type=PROTOBUF, gzipped=True
        )
        assert status == 400 and b"bad gzip body" in body
