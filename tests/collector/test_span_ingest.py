"""The collector consumes CHOREO_SPANS into the store: every format, nothing lost
across a nats-server restart or an unwritable store, nothing acked before it is
on disk."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from pathlib import Path

import msgpack
import nats
import psutil
import pytest
from nats.js import JetStreamContext
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from choreoscope.nats_server import EmbeddedNats, free_port
from collector.durable_pull import DurablePull
from collector.streams import SPANS_DURABLE, consumer_config, ensure_stream
from instrumentation import wire
from instrumentation.errors import BusUnavailableError
from instrumentation.nats_span_exporter import NatsSpanProcessor
from instrumentation.throttled_log import ThrottledWarning
from tests.collector.batches import columnar_batch, otlp_json_request, otlp_request
from tests.collector.collector_harness import (
    block_todays_partition,
    jetstream,
    publish_spans,
    query,
    running_collector,
    scalar,
    wait_for,
    wait_for_count,
)

COLUMNAR = wire.CONTENT_TYPE_COLUMNAR
PROTOBUF = wire.CONTENT_TYPE_OTLP_PROTOBUF


async def test_spans_of_every_format_reach_the_spans_view_and_garbage_reaches_rejected(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with running_collector(nats_server.url, data), jetstream(nats_server.url) as js:
        await publish_spans(js, columnar_batch(0, 50), content_type=COLUMNAR)
        await publish_spans(js, otlp_request(50, 50).SerializeToString(), content_type=PROTOBUF)
        await publish_spans(
            js, json.dumps(otlp_json_request(100, 50)).encode(), content_type="application/json"
        )
        await publish_spans(js, b"\x00not a batch", content_type=PROTOBUF, service="broken")
        assert await wait_for_count(data, "select count(*) from spans", 150) == 150
        assert await wait_for_count(data, "select count(*) from rejected", 1) == 1
    assert query(data, "select distinct exporter_id, subject, operation from spans") == [
        ("test-exporter", "recruit.cv.parsed", "process")
    ]
    (source, reason) = query(data, "select source, reason from rejected")[0]
    assert source == "nats:choreo.spans.broken"
    assert reason.startswith("malformed application/x-protobuf payload")


async def test_a_message_of_thousands_of_bad_spans_stores_its_good_ones_and_101_rejects(
    nats_server: EmbeddedNats, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a buggy exporter or a hostile OTLP/HTTP client: 5,000 spans with ids too short
    caplog.set_level(logging.WARNING, logger="collector")
    request = otlp_request(0, 5_200)
    for span in request.resource_spans[0].scope_spans[0].spans[200:]:
        span.trace_id = b"\x01\x02"
        del span.attributes[:]  # bare: the message stays under NATS's 1 MB max_payload
    data = tmp_path / "data"
    async with running_collector(nats_server.url, data), jetstream(nats_server.url) as js:
        await publish_spans(js, request.SerializeToString(), content_type=PROTOBUF, service="evil")
        assert await wait_for_count(data, "select count(*) from spans", 200) == 200
        assert await wait_for_count(data, "select count(*) from rejected", 101) == 101
    (summary,) = query(data, "select reason, stream_seq from rejected where reason like 'and %'")
    assert summary[0].startswith(
        "and 4,900 more spans of this message refused: 4,900 × trace_id is not 32 hex"
    )
    assert summary[1] == 1
    logged = [r.getMessage() for r in caplog.records if "and 4,900 more spans" in r.getMessage()]
    assert len(logged) == 1 and "nats:choreo.spans.evil, stream sequence 1" in logged[0]


@pytest.mark.parametrize("encoding", ["columnar", "otlp"])
async def test_spans_exported_by_the_real_exporter_are_stored(
    nats_server: EmbeddedNats, tmp_path: Path, encoding: str
) -> None:
    data = tmp_path / "data"
    async with running_collector(nats_server.url, data):
        processor = NatsSpanProcessor(
            service_name="scorer", nats_url=nats_server.url, schedule_delay=0.05,
            encoding=encoding,  # type: ignore[arg-type]
        )  # fmt: skip
        provider = TracerProvider(resource=Resource.create({"service.name": "scorer"}))
        provider.add_span_processor(processor)
        tracer = provider.get_tracer("test")
        for i in range(30):
            with tracer.start_as_current_span(f"process recruit.cv.parsed {i}") as span:
                span.set_attribute("choreo.workflow.id", f"wf-{i % 3}")
        await asyncio.to_thread(provider.force_flush)
        await asyncio.to_thread(provider.shutdown)
        assert await wait_for_count(data, "select count(*) from spans", 30) == 30
    assert query(data, "select count(distinct workflow_id), min(service_name) from spans") == [
        (3, "scorer")
    ]
    assert scalar(data, "select count(distinct exporter_id) from spans") == 1
    # what telemetry-gap detection reads: batch numbers without holes, nothing dropped
    (first, last, batches, dropped) = query(
        data,
        "select min(exporter_batch_seq), max(exporter_batch_seq),"
        " count(distinct exporter_batch_seq), max(exporter_spans_dropped) from spans",
    )[0]
    assert first == 1 and batches == last and dropped == 0


async def test_nats_server_restart_under_the_collector_loses_nothing(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with running_collector(nats_server.url, data):
        async with jetstream(nats_server.url) as js:
            for i in range(5):
                await publish_spans(js, columnar_batch(i * 20, 20), content_type=COLUMNAR)
        assert await wait_for_count(data, "select count(*) from spans", 100) == 100
        nats_server.restart()
        async with jetstream(nats_server.url) as js:
            for i in range(5, 10):
                await publish_spans(js, columnar_batch(i * 20, 20), content_type=COLUMNAR)
        assert await wait_for_count(data, "select count(*) from spans", 200, timeout=30) == 200
    assert scalar(data, "select count(distinct span_id) from spans") == 200


async def _unacked(url: str) -> int:
    async with jetstream(url) as js:
        info = await js.consumer_info(wire.SPANS_STREAM, SPANS_DURABLE)
        return int(info.num_ack_pending) + int(info.num_pending)


@pytest.mark.parametrize("max_write_backoff", [1.0, 3.0])  # 3.0: as long as ack_wait
async def test_unwritable_store_holds_the_acks_logs_why_and_recovers(
    nats_server: EmbeddedNats,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    max_write_backoff: float,
) -> None:
    data = tmp_path / "data"
    today = block_todays_partition(data, "spans")
    caplog.set_level(logging.ERROR, logger="collector")
    async with running_collector(
        nats_server.url, data, ack_wait=3.0, max_write_backoff=max_write_backoff
    ):
        async with jetstream(nats_server.url) as js:
            await publish_spans(js, columnar_batch(0, 40), content_type=COLUMNAR)
        assert await wait_for(lambda: "cannot write a segment" in caplog.text)
        # past ack_wait, with the backoff at its longest: the held message must not be
        # redelivered (it would be written twice once space is back)
        await asyncio.sleep(4 * max_write_backoff)
        assert await _unacked(nats_server.url) == 1
        assert scalar(data, "select count(*) from spans") == 0
        today.unlink()  # space is back
        assert await wait_for_count(data, "select count(*) from spans", 40, timeout=40) == 40
        await asyncio.sleep(0.5)
        assert await _unacked(nats_server.url) == 0
    assert "Free disk space or fix the directory's permissions" in caplog.text
    assert scalar(data, "select count(*) from spans_raw") == 40


async def test_stopping_writes_and_acks_what_was_fetched(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with running_collector(nats_server.url, data, flush_interval=60.0, flush_rows=10**6):
        async with jetstream(nats_server.url) as js:
            await publish_spans(js, columnar_batch(0, 25), content_type=COLUMNAR)
        await asyncio.sleep(1.0)
        assert scalar(data, "select count(*) from spans") == 0  # buffered, not yet written
    assert scalar(data, "select count(*) from spans") == 25
    assert await _unacked(nats_server.url) == 0


async def test_two_collectors_share_the_stream_and_store_each_span_once(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with (
        running_collector(nats_server.url, data, fetch_batch=2),
        running_collector(nats_server.url, data, fetch_batch=2),
    ):
        async with jetstream(nats_server.url) as js:
            for i in range(40):
                await publish_spans(js, columnar_batch(i * 10, 10), content_type=COLUMNAR)
        assert await wait_for_count(data, "select count(*) from spans_raw", 400) == 400
    assert scalar(data, "select count(*) from spans") == 400
    # segment names carry their collector's writer id: both took a share
    writers = {p.name.split("-")[1] for p in (data / "spans").glob("date=*/hour=*/*.parquet")}
    assert len(writers) == 2


async def test_a_killed_decode_worker_is_replaced_and_nothing_is_lost(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with running_collector(nats_server.url, data, decode_workers=1):
        (worker,) = [
            p for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())
        ]
        worker.kill()
        async with jetstream(nats_server.url) as js:
            for i in range(5):
                await publish_spans(js, columnar_batch(i * 20, 20), content_type=COLUMNAR)
        assert await wait_for_count(data, "select count(*) from spans", 100) == 100


async def test_a_nats_url_with_no_server_fails_with_what_to_check(tmp_path: Path) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    with pytest.raises(BusUnavailableError, match="check that nats-server runs with JetStream"):
        async with running_collector(url, tmp_path / "data", first_connect_timeout=1.0):
            pass


KEYLESS_ATTRIBUTE = json.dumps(
    {"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [{"value": {}}]}]}]}]}
).encode()
NESTED_TOO_DEEP = b"[" * 100_000
COUNT_TOO_LARGE = msgpack.packb({**msgpack.unpackb(columnar_batch(0, 0)), "n": 2**62})


@pytest.mark.parametrize(
    ("poison", "content_type", "reason"),
    [
        (KEYLESS_ATTRIBUTE, "application/json", "a KeyValue (attribute) lacks 'key'"),
        (NESTED_TOO_DEEP, "application/json", "JSON nested too deeply to read"),
        (COUNT_TOO_LARGE, COLUMNAR, "column 'trace_id' is not a list of n=4611686018427387904"),
    ],
    ids=["attribute-without-key", "nested-too-deep", "span-count-too-large"],
)
async def test_a_poison_payload_is_rejected_and_acked_and_the_spans_around_it_stored(
    nats_server: EmbeddedNats, tmp_path: Path, poison: bytes, content_type: str, reason: str
) -> None:
    data = tmp_path / "data"
    async with (
        running_collector(nats_server.url, data) as collector,
        jetstream(nats_server.url) as js,
    ):
        await publish_spans(js, columnar_batch(0, 10), content_type=COLUMNAR)
        await publish_spans(js, poison, content_type=content_type, service="evil")
        await publish_spans(js, columnar_batch(10, 10), content_type=COLUMNAR)
        assert await wait_for_count(data, "select count(*) from spans", 20) == 20
        assert await wait_for_count(data, "select count(*) from rejected", 1) == 1

        async def nothing_left_to_deliver() -> bool:
            info = await js.consumer_info(wire.SPANS_STREAM, SPANS_DURABLE)
            return info.num_pending == 0 and info.num_ack_pending == 0

        assert await wait_for(nothing_left_to_deliver), "the poison message was not acked"
        assert not collector.done()
    ((source, stored_reason, raw, seq),) = query(
        data, "select source, reason, raw, stream_seq from rejected"
    )
    assert source == "nats:choreo.spans.evil"
    assert seq == 2  # the second message of the stream: a redelivery writes the same row
    assert reason in stored_reason
    if content_type == "application/json" and poison.startswith(b"{"):  # one span refused
        assert (
            json.loads(raw) == json.loads(poison)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        )
    else:
        assert raw == poison[: len(raw)] and len(raw) > 0


async def test_a_garbage_or_out_of_range_batch_header_is_recorded_and_the_spans_stored(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with running_collector(nats_server.url, data), jetstream(nats_server.url) as js:
        for start, headers in (
            (0, {wire.BATCH_SEQ: "99999999999999999999"}),
            (5, {wire.SPANS_DROPPED: "lots"}),
            (10, {wire.BATCH_SEQ: "7", wire.SPANS_DROPPED: "0"}),
        ):
            await js.publish(
                f"{wire.SPANS_SUBJECT_PREFIX}scorer",
                columnar_batch(start, 5),
                headers={wire.CONTENT_TYPE: COLUMNAR, **headers},
            )
        assert await wait_for_count(data, "select count(*) from spans", 15) == 15
        assert await wait_for_count(data, "select count(*) from rejected", 2) == 2
    assert query(
        data,
        "select exporter_batch_seq, exporter_spans_dropped, count(*) from spans"
        " group by all order by all",
    ) == [(7, 0, 5), (None, None, 10)]
    reasons = [r for (r,) in query(data, "select reason from rejected order by reason")]
    assert reasons[0].startswith("header Choreo-Batch-Seq '99999999999999999999' is not")
    assert reasons[1].startswith("header Choreo-Spans-Dropped 'lots' is not")


async def _publish_raw(url: str, subject: str, *, headers: bytes, payload: bytes) -> None:
    """Publish with header bytes as given (nats-py encodes str headers as UTF-8, so it
    cannot send the invalid UTF-8 another client may), over the NATS protocol itself."""
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        await reader.readline()  # INFO
        block = b"NATS/1.0\r\n" + headers + b"\r\n"
        writer.write(
            b'CONNECT {"verbose":false,"headers":true}\r\n'
            + f"HPUB {subject} {len(block)} {len(block) + len(payload)}\r\n".encode()
            + block + payload + b"\r\nPING\r\n"
        )  # fmt: skip
        await writer.drain()
        assert (await reader.readline()).startswith(b"PONG")  # the server took it
    finally:
        writer.close()
        await writer.wait_closed()


async def test_an_exporter_id_header_that_is_not_utf8_is_recorded_and_the_spans_stored(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # was: stored as "exp-\ufffd-1", unflagged, where another exporter whose id differs
    # in those bytes only reads the same
    data = tmp_path / "data"
    async with running_collector(nats_server.url, data):
        await _publish_raw(
            nats_server.url,
            f"{wire.SPANS_SUBJECT_PREFIX}scorer",
            headers=f"{wire.CONTENT_TYPE}: {COLUMNAR}\r\n".encode()
            + f"{wire.EXPORTER_ID}: exp-".encode() + b"\xff\xfe-1\r\n"
            + f"{wire.BATCH_SEQ}: 4\r\n".encode(),
            payload=columnar_batch(0, 5),
        )  # fmt: skip
        assert await wait_for_count(data, "select count(*) from spans", 5) == 5
        assert await wait_for_count(data, "select count(*) from rejected", 1) == 1
    assert query(
        data, "select exporter_id, exporter_batch_seq, count(*) from spans group by all"
    ) == [(None, 4, 5)]
    ((reason,),) = query(data, "select reason from rejected")
    assert reason.startswith(f"header {wire.EXPORTER_ID} 'exp-")
    assert "is not valid UTF-8" in reason
    assert reason.endswith("the spans are stored without it")


@pytest.mark.parametrize("status", ["404", "500"])
async def test_a_batch_with_a_status_header_is_stored_and_ingest_goes_on(
    nats_server: EmbeddedNats, tmp_path: Path, status: str
) -> None:
    # nats-py's fetch took such a message for the server's own status reply: a 404 was
    # skipped and redelivered forever, a 500 stopped the collector at every start
    data = tmp_path / "data"
    async with (
        running_collector(nats_server.url, data, ack_wait=2.0) as collector,
        jetstream(nats_server.url) as js,
    ):
        await publish_spans(js, columnar_batch(0, 10), content_type=COLUMNAR)
        await js.publish(
            f"{wire.SPANS_SUBJECT_PREFIX}odd",
            columnar_batch(10, 10),
            headers={wire.CONTENT_TYPE: COLUMNAR, "Status": status, "Description": "x"},
        )
        await publish_spans(js, columnar_batch(20, 10), content_type=COLUMNAR)
        assert await wait_for_count(data, "select count(*) from spans", 30, timeout=10) == 30
        assert await wait_for(lambda: _nothing_unacked(nats_server.url), timeout=10)
        assert not collector.done()


async def _nothing_unacked(url: str) -> bool:
    return await _unacked(url) == 0


async def test_a_deleted_span_stream_is_created_again_and_ingest_goes_on(
    nats_server: EmbeddedNats, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    caplog.set_level(logging.WARNING, logger="collector")
    async with running_collector(nats_server.url, data), jetstream(nats_server.url) as js:
        await publish_spans(js, columnar_batch(0, 10), content_type=COLUMNAR)
        assert await wait_for_count(data, "select count(*) from spans", 10) == 10
        await js.delete_stream(wire.SPANS_STREAM)  # `nats stream rm`, or storage lost
        assert await wait_for(lambda: js.stream_info(wire.SPANS_STREAM), timeout=10)
        await publish_spans(js, columnar_batch(10, 10), content_type=COLUMNAR)
        assert await wait_for_count(data, "select count(*) from spans", 20, timeout=10) == 20
        await asyncio.sleep(2.0)  # the fetch loop runs twice a second meanwhile
    gone = [r for r in caplog.records if "fetching spans failed" in r.getMessage()]
    assert len(gone) == 1, "the loss is logged once, not at every fetch"
    assert "created the JetStream consumer choreoscope-collector again with its stream" in (
        caplog.text
    )


async def test_a_consumer_still_there_after_a_refused_fetch_is_not_reported_created_again(
    nats_server: EmbeddedNats, caplog: pytest.LogCaptureFixture
) -> None:
    # a 503 also answers while JetStream is briefly unavailable (a leader election):
    # the consumer is still there, and saying it was created again, consuming the
    # stream from its first message, would send an operator looking for a loss
    caplog.set_level(logging.WARNING, logger="collector")
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()

    def create_stream() -> Awaitable[bool]:
        return _create_span_stream(js)

    pull = _span_pull(nc, js)
    warn = ThrottledWarning(10.0, logger=logging.getLogger("collector.test"))
    try:
        await create_stream()
        assert await pull.ensure_consumer()
        await pull.create_again(create_stream=create_stream, held="spans", warn=warn)
        assert "created the JetStream consumer" not in caplog.text
        await js.delete_consumer(wire.SPANS_STREAM, SPANS_DURABLE)
        await pull.create_again(create_stream=create_stream, held="spans", warn=warn)
        assert f"created the JetStream consumer {SPANS_DURABLE} again;" in caplog.text
    finally:
        await pull.close()
        await nc.close()


async def test_a_message_published_alone_is_fetched_at_once_and_the_next_one_too(
    nats_server: EmbeddedNats,
) -> None:
    # a trickle of spans: the collector's fetch waited for a whole batch until its
    # request expired, so a span published alone reached the store a second late
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await _create_span_stream(js)
    pull = _span_pull(nc, js)
    try:
        await pull.ensure_consumer()
        for n in range(2):  # the second one too, by a request of its own
            # far sooner than the request's 60 s expiry, which it used to wait out
            msgs = await _published_while_fetching(pull, js, f"span {n}".encode(), expiry=60)
            assert [m.data for m in msgs] == [f"span {n}".encode()]
            await msgs[0].ack()
    finally:
        await pull.close()
        await nc.close()


async def test_a_span_published_as_the_collector_stops_is_fetched_at_once_by_the_next(
    nats_server: EmbeddedNats,
) -> None:
    # the fetch that handed on a trickle's span left its request open: the span after
    # it went to the stopping collector's inbox, and JetStream held it for ack_wait
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await _create_span_stream(js)
    pull = _span_pull(nc, js)
    await pull.ensure_consumer()
    (first,) = await _published_while_fetching(pull, js, b"span 0", expiry=5)
    await first.ack()
    await js.publish(f"{wire.SPANS_SUBJECT_PREFIX}alone", b"span 1")
    await asyncio.sleep(0.2)
    await pull.close()  # stopping before its next fetch
    await nc.close()

    nc = await nats.connect(nats_server.url)
    pull = _span_pull(nc, nc.jetstream())
    try:
        await pull.ensure_consumer()
        msgs = await pull.fetch(batch=64, timeout=3)  # far sooner than ack_wait (30 s)
        assert [m.data for m in msgs] == [b"span 1"]
    finally:
        await pull.close()
        await nc.close()


def _create_span_stream(js: JetStreamContext) -> Awaitable[bool]:
    return ensure_stream(
        js, name=wire.SPANS_STREAM, subjects=[wire.SPANS_SUBJECTS], replicas=1,
        max_age=3600, max_bytes=1 << 20,
    )  # fmt: skip


def _span_pull(nc: nats.NATS, js: JetStreamContext) -> DurablePull:
    """The collector's pull on the span stream, as the collector makes it."""
    return DurablePull(
        nc=nc,
        js=js,
        stream=wire.SPANS_STREAM,
        config=consumer_config(durable=SPANS_DURABLE, ack_wait=30, max_ack_pending=100),
    )


async def _published_while_fetching(
    pull: DurablePull, js: JetStreamContext, data: bytes, *, expiry: float
) -> list:
    """What a fetch of up to 64 (its request expiring in ``expiry`` s) returns when
    ``data`` is published while it waits on an empty consumer."""
    waiting = asyncio.create_task(pull.fetch(batch=64, timeout=expiry))
    await asyncio.sleep(0.3)  # the fetch is waiting: the consumer holds nothing
    await js.publish(f"{wire.SPANS_SUBJECT_PREFIX}alone", data)
    return await asyncio.wait_for(waiting, timeout=20)
