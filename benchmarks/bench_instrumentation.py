"""Traced publish→process round trips through ``Agent`` against bare nats-py.

The issue's figure: a traced ``Agent(delivery="core")`` (core NATS publish, a
queue subscription, three spans per event: publish, receive, process, exported
by the real NATS span exporter as columnar batches onto CHOREO_SPANS) against
bare nats-py core publish→callback. Both sides carry the same 1 KiB payload and
leave it undecoded (the handler takes ``decode="bytes"``); the bare side sends
the same header set as static strings (traceparent, Nats-Msg-Id,
Choreo-Workflow-Id). So the ratio isolates what tracing and the Agent cost.

Context: the same core Agent with a no-op tracer provider (what the Agent costs
without tracing), and the default JetStream Agent (publish waiting for the ack,
a durable pull consumer, an ack per event, four spans per event), traced and
untraced, which shows what durability costs.

Target: the traced core Agent's rate is at least 0.25 of the bare rate. Rates
move with the machine's load, so the bare and core runs are interleaved rounds
(``BENCH_INSTRUMENTATION_ROUNDS``, default 3) and the best of each is compared;
the ratio of every round is printed too. CPU µs per message (this process, every
thread, nats-server excluded) is the steadier figure.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nats
from opentelemetry import trace

from choreoscope.nats_server import EmbeddedNats
from instrumentation import Agent, Telemetry, configure

TARGET_RATIO = 0.25
PAYLOAD_BYTES = b'{"blob":"' + b"x" * 1000 + b'"}'  # 1 KiB of JSON
STATIC_HEADERS = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "Nats-Msg-Id": "7f3c0e2a9b1d4c5e8f6a7b8c9d0e1f2a",
    "Choreo-Workflow-Id": "3b5d7f9a1c2e4f6a8b0c2d4e6f8a0b1c",
}
WINDOW = 256  # publishes between yields (core), or in flight at once (JetStream)


@dataclass(frozen=True)
class Run:
    rate: float  # round trips per second
    cpu_us: float  # this process's CPU time per message, every thread
    spans_exported: int = 0
    spans_dropped: int = 0
    batches_sent: int = 0


async def bare_round_trips(url: str, count: int) -> Run:
    nc = await nats.connect(url)
    done = asyncio.Event()
    received = 0

    async def on_message(msg: object) -> None:
        nonlocal received
        received += 1
        if received == count:
            done.set()

    await nc.subscribe("bench.bare", cb=on_message)
    cpu = time.process_time()
    started = time.perf_counter()
    for i in range(count):
        await nc.publish("bench.bare", PAYLOAD_BYTES, headers=STATIC_HEADERS)
        if i % WINDOW == 0:
            await asyncio.sleep(0)
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - started
    cpu_us = (time.process_time() - cpu) / count * 1e6
    await nc.close()
    return Run(count / elapsed, cpu_us)


async def agent_round_trips(url: str, count: int, *, delivery: str, traced: bool) -> Run:
    """Round trips through an Agent, with the real exporter or a no-op tracer provider."""
    telemetry = (
        configure(service_name="bench", nats_url=url, install_global=False)
        if traced
        else Telemetry(service_name="bench", tracer_provider=trace.NoOpTracerProvider())
    )
    agent = Agent(
        "bench",
        delivery=delivery,  # type: ignore[arg-type]
        nats_url=url,
        telemetry=telemetry,
        max_in_flight=512,
        fetch_batch=256,
        heartbeat_interval=5,
    )
    subject = f"bench.{delivery}"
    done = asyncio.Event()
    processed = 0

    @agent.on(subject, decode="bytes")
    async def handle(event: object) -> None:
        nonlocal processed
        processed += 1
        if processed == count:
            done.set()

    run = asyncio.create_task(agent.run())
    await agent.wait_ready(timeout=30)
    await agent.start_workflow(subject, PAYLOAD_BYTES)  # warm the stream and consumer
    await asyncio.sleep(0.5)
    await asyncio.to_thread(telemetry.force_flush, timeout=10)
    processed = 0
    cpu = time.process_time()
    started = time.perf_counter()
    if delivery == "core":
        for i in range(count):
            await agent.start_workflow(subject, PAYLOAD_BYTES)
            if i % WINDOW == 0:
                await asyncio.sleep(0)
    else:  # each publish waits for its ack: keep a window of them in flight
        for offset in range(0, count, WINDOW):
            await asyncio.gather(
                *(
                    agent.start_workflow(subject, PAYLOAD_BYTES)
                    for _ in range(min(WINDOW, count - offset))
                )
            )
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - started
    # every span of these events exported (and acked) counts in the CPU figure
    await asyncio.to_thread(telemetry.force_flush, timeout=60)
    cpu_us = (time.process_time() - cpu) / count * 1e6
    agent.stop()
    await run
    stats = telemetry.stats()
    await asyncio.to_thread(telemetry.shutdown)
    await asyncio.sleep(0.5)  # let the server settle before the next measurement
    return Run(
        count / elapsed,
        cpu_us,
        spans_exported=stats.spans_exported if stats else 0,
        spans_dropped=stats.spans_dropped if stats else 0,
        batches_sent=stats.batches_sent if stats else 0,
    )


def _line(label: str, run: Run) -> str:
    return f"{label:<38}{run.rate:10,.0f} round trips/s   {run.cpu_us:6.1f} µs CPU per message"


def _overhead(run: Run, base: Run) -> str:
    wall = (1 / run.rate - 1 / base.rate) * 1e6
    return f"{wall:8.1f} µs wall, {run.cpu_us - base.cpu_us:6.1f} µs CPU per message"


def _best(runs: list[Run]) -> Run:
    """The fastest rate and the least CPU of interleaved runs: what the code costs
    when the shared machine's other load is least in the way."""
    fastest = max(runs, key=lambda run: run.rate)
    return Run(
        fastest.rate,
        min(run.cpu_us for run in runs),
        spans_exported=fastest.spans_exported,
        spans_dropped=sum(run.spans_dropped for run in runs),
        batches_sent=fastest.batches_sent,
    )


async def measure(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedNats(store_dir=Path(tmp) / "nats") as server:
        url = server.url
        await bare_round_trips(url, min(count, 2000))  # warm-up
        bares, cores, cores_off = [], [], []
        for _ in range(rounds):  # interleaved, so a burst of load hits every side alike
            bares.append(await bare_round_trips(url, count))
            cores.append(await agent_round_trips(url, count, delivery="core", traced=True))
            cores_off.append(await agent_round_trips(url, count, delivery="core", traced=False))
        bare, core, core_off = _best(bares), _best(cores), _best(cores_off)
        js = await agent_round_trips(url, count, delivery="jetstream", traced=True)
        js_off = await agent_round_trips(url, count, delivery="jetstream", traced=False)
    ratio = core.rate / bare.rate
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(
        f"messages per run: {count:,}; 1 KiB payload; the handler does nothing with it; "
        f"bare and core runs: best of {rounds}, interleaved"
    )
    round_ratios = [c.rate / b.rate for c, b in zip(cores, bares, strict=True)]
    print(
        "round by round, core/bare: "
        + ", ".join(f"{r:.2f}" for r in round_ratios)
        + f"   (min {min(round_ratios):.2f}, median {statistics.median(round_ratios):.2f}, "
        f"max {max(round_ratios):.2f})"
    )
    print(_line("bare nats-py core publish→callback", bare))
    print(_line('traced Agent(delivery="core")', core))
    print(
        f"ratio traced core Agent / bare:       {ratio:10.2f}   target >= {TARGET_RATIO}: {verdict}"
    )
    print(
        f"the same from CPU per message:        {bare.cpu_us / core.cpu_us:10.2f}   "
        "(bare µs / traced µs: roughly what the rates give on idle cores)"
    )
    print(f"overhead per message vs bare:         {_overhead(core, bare)}")
    print(f"  of which tracing + export:          {_overhead(core, core_off)}")
    print(
        f"spans exported: {core.spans_exported:,} in {core.batches_sent:,} messages, "
        f"dropped: {core.spans_dropped:,} (3 per event: publish, receive, process)"
    )
    print()
    print("context: what the Agent costs without tracing, and what JetStream's durability costs")
    print(_line('Agent(delivery="core"), tracing off', core_off))
    print(_line("traced Agent, JetStream (default)", js))
    print(_line("Agent, JetStream, tracing off", js_off))
    print(f"ratio traced JetStream Agent / bare:  {js.rate / bare.rate:10.2f}")
    print(f"tracing + export on JetStream:        {_overhead(js, js_off)}")
    print(
        f"spans exported: {js.spans_exported:,} in {js.batches_sent:,} messages, "
        f"dropped: {js.spans_dropped:,} (4 per event: publish, receive, process, ack)"
    )
    print(
        "(µs CPU: this process's CPU time per message, every thread including the "
        "exporter's, nats-server excluded; steadier than rates on a shared machine)"
    )


def main() -> None:
    count = int(os.environ.get("BENCH_INSTRUMENTATION_MESSAGES", "20000"))
    rounds = int(os.environ.get("BENCH_INSTRUMENTATION_ROUNDS", "3"))
    asyncio.run(measure(count, rounds))


if __name__ == "__main__":
    main()
