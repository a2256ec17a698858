"""`choreoscope collect` as a process: ready line, clean stop on SIGTERM, and
exactly-once spans after a SIGKILL mid-stream."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from choreoscope.nats_server import EmbeddedNats
from instrumentation import wire
from tests.collector.batches import columnar_batch, otlp_request
from tests.collector.collector_harness import (
    block_todays_partition,
    jetstream,
    publish_spans,
    scalar,
    wait_for,
    wait_for_count,
)


def start_collect(nats_url: str, data: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "choreoscope.cli", "collect", "--nats", nats_url,
            "--data", str(data), "--no-otlp-http", "--flush-interval", "100ms",
            "--decode-workers", "1", "--ack-wait", "2s",
        ],
        stderr=log.open("ab"),
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


async def wait_ready(log: Path, *, occurrences: int = 1) -> None:
    ready = await wait_for(
        lambda: log.read_text().count("collector ready") >= occurrences, timeout=30
    )
    assert ready, log.read_text()


async def test_collect_logs_ready_and_stops_cleanly_on_sigterm(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data, log = tmp_path / "data", tmp_path / "collect.log"
    proc = start_collect(nats_server.url, data, log)
    try:
        await wait_ready(log)
        async with jetstream(nats_server.url) as js:
            await publish_spans(js, columnar_batch(0, 10), content_type=wire.CONTENT_TYPE_COLUMNAR)
        assert await wait_for_count(data, "select count(*) from spans", 10) == 10
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        proc.kill()
    text = log.read_text()
    assert "SIGTERM received: flushing and stopping" in text
    assert "collector stopped: 10 spans" in text
    assert "Traceback" not in text


async def test_every_span_is_stored_exactly_once_after_a_sigkill_mid_stream(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data, log = tmp_path / "data", tmp_path / "collect.log"
    batches, per_batch = 60, 50
    proc = start_collect(nats_server.url, data, log)
    try:
        await wait_ready(log)
        async with jetstream(nats_server.url) as js:
            for i in range(batches):
                if i % 2:
                    payload = columnar_batch(i * per_batch, per_batch)
                    await publish_spans(js, payload, content_type=wire.CONTENT_TYPE_COLUMNAR)
                else:
                    payload = otlp_request(i * per_batch, per_batch).SerializeToString()
                    await publish_spans(js, payload, content_type=wire.CONTENT_TYPE_OTLP_PROTOBUF)
                if i == batches // 3:
                    await wait_for(lambda: scalar(data, "select count(*) from spans") > 0)
                    proc.kill()  # SIGKILL: no flush, no goodbye
                    proc.wait()
                    proc = start_collect(nats_server.url, data, log)
                await asyncio.sleep(0.01)
        await wait_ready(log, occurrences=2)
        total = batches * per_batch
        assert await wait_for_count(data, "select count(*) from spans", total, timeout=60) == total
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
    assert scalar(data, "select count(distinct (trace_id, span_id)) from spans") == total
    assert scalar(data, "select count(*) from spans_raw") >= total


async def test_spans_a_sigkilled_collector_fetched_but_had_not_written_are_stored_by_the_next(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # the kill lands for certain between fetch and durable write: the store refuses
    # the segment, so the collector holds the message unacked when it dies (a collector
    # that acked on fetch passed the mid-stream test above, which mostly kills between
    # batches, but loses these)
    data, log = tmp_path / "data", tmp_path / "collect.log"
    today = block_todays_partition(data, "spans")
    proc = start_collect(nats_server.url, data, log)
    try:
        await wait_ready(log)
        async with jetstream(nats_server.url) as js:
            await publish_spans(js, columnar_batch(0, 30), content_type=wire.CONTENT_TYPE_COLUMNAR)
        assert await wait_for(lambda: "cannot write a segment" in log.read_text(), timeout=30)
        proc.kill()
        proc.wait()
        today.unlink()  # space is back
        proc = start_collect(nats_server.url, data, log)
        assert await wait_for_count(data, "select count(*) from spans", 30, timeout=30) == 30
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
