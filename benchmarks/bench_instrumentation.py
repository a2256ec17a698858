"""Traced publish→process round trips through ``Agent`` against bare nats-py.

Both sides carry the same 1 KiB payload; the bare side sends the same header set
as static strings (traceparent, Nats-Msg-Id, Choreo-Workflow-Id) with core NATS
publish→callback. The traced side is an ``Agent`` as users run it: JetStream
publish waiting for the ack, a durable pull consumer, an ack per event, four spans
per event, and the real NATS span exporter (columnar batches onto CHOREO_SPANS).
A third run, the same Agent with a no-op tracer provider, separates what
JetStream's durability costs from what tracing costs.

Target: the traced rate is at least 0.25 of the bare rate.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import nats
from opentelemetry import trace

from choreoscope.nats_server import EmbeddedNats
from instrumentation import Agent, Telemetry, configure

TARGET_RATIO = 0.25
PAYLOAD = {"blob": "x" * 1000}  # 1 KiB of JSON once encoded
PAYLOAD_BYTES = b'{"blob":"' + b"x" * 1000 + b'"}'
STATIC_HEADERS = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "Nats-Msg-Id": "7f3c0e2a9b1d4c5e8f6a7b8c9d0e1f2a",
    "Choreo-Workflow-Id": "3b5d7f9a1c2e4f6a8b0c2d4e6f8a0b1c",
}
WINDOW = 256  # publishes in flight at once on each side


async def bare_round_trips(url: str, count: int) -> float:
    nc = await nats.connect(url)
    done = asyncio.Event()
    received = 0

    async def on_message(msg: object) -> None:
        nonlocal received
        received += 1
        if received == count:
            done.set()

    await nc.subscribe("bench.bare", cb=on_message)
    started = time.perf_counter()
    for i in range(count):
        await nc.publish("bench.bare", PAYLOAD_BYTES, headers=STATIC_HEADERS)
        if i % WINDOW == 0:
            await asyncio.sleep(0)
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - started
    await nc.close()
    return count / elapsed


async def agent_round_trips(
    url: str, count: int, *, traced: bool = True
) -> tuple[float, dict[str, int]]:
    """Round trips through an Agent: with the real exporter, or with tracing off
    (a no-op tracer provider) to show what JetStream delivery alone costs."""
    telemetry = (
        configure(service_name="bench", nats_url=url, install_global=False)
        if traced
        else Telemetry(service_name="bench", tracer_provider=trace.NoOpTracerProvider())
    )
    agent = Agent(
        "bench",
        nats_url=url,
        telemetry=telemetry,
        max_in_flight=512,
        fetch_batch=256,
        heartbeat_interval=5,
    )
    done = asyncio.Event()
    processed = 0

    @agent.on("bench.traced")
    async def handle(event: object) -> None:
        nonlocal processed
        processed += 1
        if processed == count:
            done.set()

    run = asyncio.create_task(agent.run())
    await agent.wait_ready(timeout=30)
    await agent.start_workflow("bench.traced", PAYLOAD)  # warm the stream and consumer
    await asyncio.sleep(0.5)
    processed = 0
    started = time.perf_counter()
    for offset in range(0, count, WINDOW):
        await asyncio.gather(
            *(
                agent.start_workflow("bench.traced", PAYLOAD)
                for _ in range(min(WINDOW, count - offset))
            )
        )
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - started
    agent.stop()
    await run
    await asyncio.to_thread(telemetry.force_flush, timeout=30)
    stats = telemetry.stats()
    await asyncio.to_thread(telemetry.shutdown)
    await asyncio.sleep(0.5)  # let the server settle before the next measurement
    return count / elapsed, {
        "spans_exported": stats.spans_exported if stats else 0,
        "spans_dropped": stats.spans_dropped if stats else 0,
        "batches_sent": stats.batches_sent if stats else 0,
    }


async def measure(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedNats(store_dir=Path(tmp) / "nats") as server:
        await bare_round_trips(server.url, min(count, 2000))  # warm-up
        cpu = time.process_time()
        bare = await bare_round_trips(server.url, count)
        bare_cpu, cpu = (time.process_time() - cpu) / count * 1e6, time.process_time()
        untraced, _ = await agent_round_trips(server.url, count, traced=False)
        untraced_cpu, cpu = (time.process_time() - cpu) / count * 1e6, time.process_time()
        traced, stats = await agent_round_trips(server.url, count)
        traced_cpu = (time.process_time() - cpu) / count * 1e6
    ratio = traced / bare
    overhead_us = (1 / traced - 1 / bare) * 1e6
    tracing_us = (1 / traced - 1 / untraced) * 1e6
    print(f"messages per side:                 {count}")
    print(
        f"bare nats-py publish→callback:     {bare:10,.0f} round trips/s   {bare_cpu:6.1f} µs CPU"
    )
    print(
        f"Agent, tracing off (JetStream):    {untraced:10,.0f} round trips/s   "
        f"{untraced_cpu:6.1f} µs CPU"
    )
    print(
        f"traced Agent publish→process:      {traced:10,.0f} round trips/s   "
        f"{traced_cpu:6.1f} µs CPU"
    )
    print(f"ratio traced/bare:                 {ratio:10.2f}   (target >= {TARGET_RATIO})")
    print(f"overhead per message vs bare:      {overhead_us:10.1f} µs")
    print(f"  of which tracing + export:       {tracing_us:10.1f} µs")
    print(f"ratio traced/untraced Agent:       {traced / untraced:10.2f}")
    print(
        f"spans exported: {stats['spans_exported']:,} in {stats['batches_sent']:,} messages, "
        f"dropped: {stats['spans_dropped']:,} (4 spans per event: publish, receive, process, ack)"
    )
    print(
        "(µs CPU: this process's CPU time per message, every thread, nats-server excluded; "
        "steadier than rates on a shared machine)"
    )


def main() -> None:
    count = int(os.environ.get("BENCH_INSTRUMENTATION_MESSAGES", "20000"))
    asyncio.run(measure(count))


if __name__ == "__main__":
    main()
