"""The exporter while NATS is away: it buffers up to its bound, counts what it drops,
and tells the collector in every batch. The host never blocks."""

from __future__ import annotations

import asyncio
import time

import nats

from choreoscope.nats_server import EmbeddedNats
from instrumentation import configure, wire
from instrumentation.columnar_encoding import decode_columnar_batch
from tests.instrumentation.deterministic_spans import read_stream


async def test_exporter_buffers_while_nats_is_down_then_counts_and_reports_drops(tmp_path):
    server = EmbeddedNats(store_dir=tmp_path / "nats")
    telemetry = configure(
        service_name="scorer",
        nats_url=server.url,
        install_global=False,
        max_queue_spans=100,
        max_batch_spans=10,
        schedule_delay=0.05,
    )
    try:
        started = time.perf_counter()
        for i in range(150):
            telemetry.tracer.start_span(f"step {i}").end()
        ending_spans_took = time.perf_counter() - started
        stats = telemetry.stats()
        assert stats.spans_exported == 0
        assert stats.spans_dropped >= 40  # the bound is 100 queued (+ one batch in hand)
        assert stats.spans_dropped + stats.spans_queued == 150
        with server:
            assert await asyncio.to_thread(telemetry.force_flush, timeout=20)
            stats = telemetry.stats()
            assert stats.spans_exported + stats.spans_dropped == 150
            nc = await nats.connect(server.url)
            messages = await read_stream(nc.jetstream(), wire.SPANS_STREAM, wire.SPANS_SUBJECTS)
            await nc.close()
    finally:
        await asyncio.to_thread(telemetry.shutdown, timeout=2)
    assert sum(decode_columnar_batch(m.data)["n"] for m in messages) == stats.spans_exported
    assert {m.headers[wire.SPANS_DROPPED] for m in messages} == {str(stats.spans_dropped)}
    # ending a span never waited for NATS (a generous bound: no network wait in it)
    assert ending_spans_took < 5


async def test_shutdown_with_nats_unreachable_gives_up_and_counts_the_spans_dropped(tmp_path):
    server = EmbeddedNats(store_dir=tmp_path / "nats")  # never started
    telemetry = configure(
        service_name="scorer", nats_url=server.url, install_global=False, schedule_delay=0.05
    )
    for i in range(30):
        telemetry.tracer.start_span(f"step {i}").end()
    await asyncio.to_thread(telemetry.shutdown, timeout=0.5)
    stats = telemetry.stats()
    assert stats.spans_dropped == 30 and stats.spans_exported == 0 and stats.spans_queued == 0


async def test_one_process_hosts_several_services_each_exporting_to_its_subject(nats_server):
    handles = [
        configure(
            service_name=name,
            nats_url=nats_server.url,
            install_global=False,
            schedule_delay=0.05,
        )
        for name in ("parser", "scorer")
    ]
    try:
        for handle in handles:
            handle.tracer.start_span(f"work of {handle.service_name}").end()
        for handle in handles:
            assert await asyncio.to_thread(handle.force_flush, timeout=20)
    finally:
        for handle in handles:
            await asyncio.to_thread(handle.shutdown)
    nc = await nats.connect(nats_server.url)
    messages = await read_stream(nc.jetstream(), wire.SPANS_STREAM, wire.SPANS_SUBJECTS)
    await nc.close()
    by_subject = {m.subject: decode_columnar_batch(m.data) for m in messages}
    assert by_subject["choreo.spans.parser"]["name"] == ["work of parser"]
    assert by_subject["choreo.spans.scorer"]["resource"]["service.name"] == "scorer"


async def test_spans_ended_while_nats_restarts_arrive_after_it_is_back(nats_server):
    telemetry = configure(
        service_name="scorer", nats_url=nats_server.url, install_global=False, schedule_delay=0.05
    )
    try:
        telemetry.tracer.start_span("before the restart").end()
        assert await asyncio.to_thread(telemetry.force_flush, timeout=20)
        nats_server.stop()
        telemetry.tracer.start_span("while NATS is down").end()
        await asyncio.sleep(0.3)
        assert telemetry.stats().spans_queued == 1
        await asyncio.to_thread(nats_server.start)
        assert await asyncio.to_thread(telemetry.force_flush, timeout=30)
    finally:
        await asyncio.to_thread(telemetry.shutdown, timeout=2)
    nc = await nats.connect(nats_server.url)
    messages = await read_stream(nc.jetstream(), wire.SPANS_STREAM, wire.SPANS_SUBJECTS)
    await nc.close()
    names = [name for m in messages for name in decode_columnar_batch(m.data)["name"]]
    assert names == ["before the restart", "while NATS is down"]
    assert telemetry.stats().spans_dropped == 0
