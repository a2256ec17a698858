"""The NATS span exporter, end to end: spans go through a real nats-server and are
decoded off CHOREO_SPANS as the collector would read them."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap

import nats
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import SpanKind, Status, StatusCode

from instrumentation import configure, semconv, wire
from instrumentation.columnar_encoding import decode_columnar_batch


async def _read_span_messages(url: str) -> list:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            wire.SPANS_SUBJECTS, durable="reader", stream=wire.SPANS_STREAM
        )
        messages = []
        while True:
            try:
                messages.extend(await sub.fetch(100, timeout=0.5))
            except TimeoutError:  # nats-py raises its own or asyncio's
                return messages
    finally:
        await nc.close()


def _make_spans(telemetry, count: int) -> None:
    tracer = telemetry.tracer
    for i in range(count):
        with tracer.start_as_current_span("work", kind=SpanKind.PRODUCER) as parent:
            parent.set_attribute(semconv.CHOREO_WORKFLOW_ID, f"wf-{i}")
            parent.set_attribute(semconv.MESSAGING_DESTINATION_NAME, "recruit.cv.parsed")
            with tracer.start_as_current_span("child") as child:
                child.set_status(Status(StatusCode.ERROR, "boom"))
                child.add_event("retry", {"attempt": 2})


async def test_spans_arrive_on_choreo_spans_in_columnar_batches_of_hundreds(nats_server):
    telemetry = configure(
        service_name="scorer",
        nats_url=nats_server.url,
        install_global=False,
        schedule_delay=0.05,
    )
    try:
        _make_spans(telemetry, 600)  # 1200 spans
        assert await asyncio.to_thread(telemetry.force_flush, timeout=20)
    finally:
        await asyncio.to_thread(telemetry.shutdown)

    messages = await _read_span_messages(nats_server.url)
    batches = [decode_columnar_batch(m.data) for m in messages]
    assert sum(b["n"] for b in batches) == 1200
    assert max(b["n"] for b in batches) >= 200
    assert {m.subject for m in messages} == {"choreo.spans.scorer"}
    first = messages[0].headers
    assert first[wire.CONTENT_TYPE] == wire.CONTENT_TYPE_COLUMNAR
    assert first[wire.SPANS_DROPPED] == "0"
    assert [int(m.headers[wire.BATCH_SEQ]) for m in messages] == list(range(1, len(messages) + 1))
    assert len({m.headers[wire.EXPORTER_ID] for m in messages}) == 1

    batch = batches[0]
    for key in ("trace_id", "span_id", "parent_span_id", "name", "kind", "start_ns", "end_ns"):
        assert len(batch[key]) == batch["n"]
    assert batch["resource"][semconv.SERVICE_NAME] == "scorer"
    child = batch["name"].index("child")
    parent = batch["name"].index("work")
    assert batch["parent_span_id"][child] == batch["span_id"][parent]
    assert batch["parent_span_id"][parent] is None
    assert batch["kind"][parent] == 4  # OTLP PRODUCER
    assert batch["status_code"][child] == 2
    assert batch["status_message"][child] == "boom"
    assert "retry" in batch["events"][child]
    assert batch["workflow_id"][parent].startswith("wf-")
    assert batch["subject"][parent] == "recruit.cv.parsed"
    assert batch["workflow_id"][child] is None
    assert telemetry.stats().spans_exported == 1200


async def test_otlp_encoding_publishes_stock_export_trace_service_requests(nats_server):
    telemetry = configure(
        service_name="parser",
        nats_url=nats_server.url,
        install_global=False,
        encoding="otlp",
        schedule_delay=0.05,
    )
    try:
        _make_spans(telemetry, 10)
        assert await asyncio.to_thread(telemetry.force_flush, timeout=20)
    finally:
        await asyncio.to_thread(telemetry.shutdown)
    messages = await _read_span_messages(nats_server.url)
    assert {m.headers[wire.CONTENT_TYPE] for m in messages} == {wire.CONTENT_TYPE_OTLP_PROTOBUF}
    names = []
    for message in messages:
        request = ExportTraceServiceRequest.FromString(message.data)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                names.extend(span.name for span in scope_spans.spans)
    assert sorted(names) == ["child"] * 10 + ["work"] * 10


async def test_a_steady_trickle_of_spans_still_goes_out_in_large_batches(nats_server):
    telemetry = configure(
        service_name="scorer",
        nats_url=nats_server.url,
        install_global=False,
        schedule_delay=0.2,
    )
    try:
        for i in range(600):
            telemetry.tracer.start_span(f"step {i}").end()
            if i % 3 == 0:
                await asyncio.sleep(0.001)
        assert await asyncio.to_thread(telemetry.force_flush, timeout=20)
    finally:
        await asyncio.to_thread(telemetry.shutdown)
    messages = await _read_span_messages(nats_server.url)
    sizes = [decode_columnar_batch(m.data)["n"] for m in messages]
    assert sum(sizes) == 600
    # a partial batch waits for more spans instead of leaving as soon as it can
    assert min(sizes[:-1], default=600) >= 50, sizes


async def test_stream_created_by_an_exporter_is_bounded_in_age_and_size(nats_server):
    # An agent started before any collector creates CHOREO_SPANS; it must not grow forever.
    telemetry = configure(
        service_name="scorer", nats_url=nats_server.url, install_global=False, schedule_delay=0.05
    )
    try:
        _make_spans(telemetry, 1)
        assert await asyncio.to_thread(telemetry.force_flush, timeout=20)
    finally:
        await asyncio.to_thread(telemetry.shutdown)

    nc = await nats.connect(nats_server.url)
    try:
        info = await nc.jetstream().stream_info(wire.SPANS_STREAM)
    finally:
        await nc.close()
    assert info.config.max_age == wire.SPANS_STREAM_MAX_AGE_S
    assert info.config.max_bytes == wire.SPANS_STREAM_MAX_BYTES


async def test_a_batch_larger_than_nats_max_payload_is_halved_and_an_oversized_span_dropped(
    nats_server,
):
    telemetry = configure(
        service_name="scorer", nats_url=nats_server.url, install_global=False, schedule_delay=0.05
    )
    big = "x" * 300_000  # four of these are more than the server's 1 MB max payload
    try:
        for i in range(8):
            telemetry.tracer.start_span(f"step {i}", attributes={"blob": big}).end()
        telemetry.tracer.start_span("too large", attributes={"blob": big * 4}).end()
        assert await asyncio.to_thread(telemetry.force_flush, timeout=20)
    finally:
        await asyncio.to_thread(telemetry.shutdown)
    messages = await _read_span_messages(nats_server.url)
    names = [name for m in messages for name in decode_columnar_batch(m.data)["name"]]
    assert sorted(names) == [f"step {i}" for i in range(8)]
    assert len(messages) >= 3  # no payload holds more than three of them
    stats = telemetry.stats()
    assert (stats.spans_exported, stats.spans_dropped) == (8, 1)


FORKING_APP = textwrap.dedent(
    """
    import os, sys
    from instrumentation import configure

    telemetry = configure(
        service_name="scorer", nats_url=sys.argv[1], install_global=False, schedule_delay=0.05
    )
    telemetry.tracer.start_span("in the parent").end()
    assert telemetry.force_flush(timeout=20)
    pid = os.fork()  # a worker pool, a pre-forking server
    if pid == 0:
        telemetry.tracer.start_span("in the child").end()
        os._exit(0 if telemetry.force_flush(timeout=20) else 1)
    _, status = os.waitpid(pid, 0)
    telemetry.shutdown()
    print(os.waitstatus_to_exitcode(status))
    """
)


async def test_spans_ended_in_a_forked_child_process_are_exported(nats_server):
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", FORKING_APP, nats_server.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0", "the child's spans were not flushed"
    batches = [decode_columnar_batch(m.data) for m in await _read_span_messages(nats_server.url)]
    assert sorted(name for b in batches for name in b["name"]) == ["in the child", "in the parent"]


async def test_a_publish_that_keeps_failing_is_warned_of_once_not_every_retry(nats_server, caplog):
    # NATS is up, but the stream is gone (or JetStream off, or a permission missing):
    # every retry, twice a second, warned again and filled the service's log
    telemetry = configure(
        service_name="scorer", nats_url=nats_server.url, install_global=False,
        schedule_delay=0.05,
    )  # fmt: skip
    nc = await nats.connect(nats_server.url)
    try:
        _make_spans(telemetry, 1)
        assert await asyncio.to_thread(telemetry.force_flush, timeout=20)
        await nc.jetstream().delete_stream(wire.SPANS_STREAM)
        with caplog.at_level(logging.INFO, logger="instrumentation.nats_span_exporter"):
            _make_spans(telemetry, 1)
            await asyncio.sleep(3)  # six retries
            failed = [r for r in caplog.records if "could not publish" in r.getMessage()]
            assert len(failed) == 1 and telemetry.stats().export_failures >= 4
            await nc.jetstream().add_stream(name=wire.SPANS_STREAM, subjects=[wire.SPANS_SUBJECTS])
            assert await asyncio.to_thread(telemetry.force_flush, timeout=20)
        assert "publishes to" in caplog.text and "again" in caplog.text
    finally:
        await nc.close()
        await asyncio.to_thread(telemetry.shutdown)


async def test_an_idle_exporter_sleeps_instead_of_polling_its_queue(nats_server):
    telemetry = configure(
        service_name="idler", nats_url=nats_server.url, install_global=False, schedule_delay=0.2
    )
    exporter = telemetry.exporter
    checks = 0
    batch_due = exporter._batch_due

    def counting_batch_due(last_sent: float) -> bool:
        nonlocal checks
        checks += 1
        return batch_due(last_sent)

    exporter._batch_due = counting_batch_due
    try:
        _make_spans(telemetry, 1)
        assert await asyncio.to_thread(telemetry.force_flush, timeout=10)
        checks = 0
        await asyncio.sleep(1.0)  # idle: about one look per schedule_delay
        assert checks <= 10, f"the idle exporter looked at its queue {checks} times in 1 s"
        _make_spans(telemetry, 1)  # a span ended while idle still goes out
        assert await asyncio.to_thread(telemetry.force_flush, timeout=10)
        assert telemetry.stats().spans_exported == 4
    finally:
        await asyncio.to_thread(telemetry.shutdown)
