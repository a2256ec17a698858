"""Collector throughput: drain pre-published spans from CHOREO_SPANS into the store.

    python -m benchmarks collector                       # 1M spans per run (make bench)
    python -m benchmarks.bench_collector --spans 100000  # a quick run

Two runs: the exporter's columnar msgpack format, and 512-span stock OTLP
protobuf requests; ~8 attributes a span. For each: spans/s with the collector
running as `choreoscope collect` in its own process (and its decode workers),
the ratio to a consumer that only fetches and acks the same messages, the
collector's peak RSS (children included), and how long after a publish a
concurrent reader sees the spans. On a machine others share, wall-clock spans/s
drops with their load; the CPU time per span (collector process tree) and the
rate it allows on idle cores are printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgpack
import nats
import psutil
from nats.js.api import AckPolicy, ConsumerConfig

from choreoscope.nats_server import EmbeddedNats
from collector.streams import ensure_stream
from instrumentation import wire
from store import open_store
from tests.collector.batches import columnar_batch, otlp_request

SPANS_PER_MESSAGE = 512
TARGETS = {"columnar": 200_000, "otlp": 100_000}
RSS_TARGET = 2**30
VISIBLE_TARGET_S = 2.0


def columnar_payloads(n: int) -> list[bytes]:
    """Batches of the columnar format, new ids each; the columns are built once."""
    template = msgpack.unpackb(columnar_batch(0, SPANS_PER_MESSAGE))
    payloads = []
    for start in range(0, n, SPANS_PER_MESSAGE):
        template["trace_id"] = [f"{(start + i) // 8 + 1:032x}" for i in range(SPANS_PER_MESSAGE)]
        template["span_id"] = [f"{start + i + 1:016x}" for i in range(SPANS_PER_MESSAGE)]
        payloads.append(msgpack.packb(template))
    return payloads


def otlp_payloads(n: int) -> list[bytes]:
    request = otlp_request(0, SPANS_PER_MESSAGE)
    spans = request.resource_spans[0].scope_spans[0].spans
    payloads = []
    for start in range(0, n, SPANS_PER_MESSAGE):
        for i, span in enumerate(spans):
            span.trace_id = ((start + i) // 8 + 1).to_bytes(16, "big")
            span.span_id = (start + i + 1).to_bytes(8, "big")
        payloads.append(request.SerializeToString())
    return payloads


async def publish(url: str, payloads: list[bytes], content_type: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_stream(
        js, name=wire.SPANS_STREAM, subjects=[wire.SPANS_SUBJECTS], replicas=1,
        max_age=3600, max_bytes=16 * 2**30,
    )  # fmt: skip
    headers = {wire.CONTENT_TYPE: content_type}
    for i in range(0, len(payloads), 64):
        acks = [
            js.publish(f"{wire.SPANS_SUBJECT_PREFIX}bench", p, headers=headers)
            for p in payloads[i : i + 64]
        ]
        await asyncio.gather(*acks)
    await nc.close()


async def fetch_and_ack_baseline(url: str, messages: int) -> float:
    """Seconds a consumer that only fetches and acks needs for ``messages``."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=20_000)
    sub = await js.pull_subscribe(
        wire.SPANS_SUBJECTS, durable="bench-baseline", stream=wire.SPANS_STREAM, config=config
    )
    seen = 0
    started = time.perf_counter()
    while seen < messages:
        try:
            batch = await sub.fetch(64, timeout=2)
        except (nats.errors.TimeoutError, TimeoutError):
            continue
        for msg in batch:
            await msg.ack()
        seen += len(batch)
    elapsed = time.perf_counter() - started
    await js.delete_consumer(wire.SPANS_STREAM, "bench-baseline")
    await nc.close()
    return elapsed


class ProcessTreeMeter:
    """Samples a process and its children: peak RSS, and CPU seconds used so far."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        try:
            procs = [self.process, *self.process.children(recursive=True)]
            self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            for p in procs:
                times = p.cpu_times()
                self._cpu[p.pid] = times.user + times.system
        except psutil.Error:
            pass

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def cpu_seconds(self) -> float:
        self._sample()
        return sum(self._cpu.values())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def cpu_pressure() -> str:
    """How much runnable work waited for a CPU meanwhile (Linux PSI), others' included."""
    try:
        some = Path("/proc/pressure/cpu").read_text().split("\n")[0]
    except OSError:
        return "CPU pressure unknown"
    return "CPU pressure " + some.replace("some ", "").split(" total")[0]


def wait_until(predicate: Callable[[], bool], *, timeout: float, interval: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # a reader racing a new store; try again
            pass
        time.sleep(interval)
    return False


class SpanCounter:
    """A concurrent reader: one connection, re-run (each query re-lists the segments)."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self._con = None

    def __call__(self) -> int:
        if self._con is None:
            self._con = open_store(self.data)  # fails until the collector created the store
        return self._con.execute("select count(*) from spans_raw").fetchone()[0]


def run_format(name: str, n: int, workdir: Path) -> None:
    content_type = (
        wire.CONTENT_TYPE_COLUMNAR if name == "columnar" else wire.CONTENT_TYPE_OTLP_PROTOBUF
    )
    payloads = columnar_payloads(n) if name == "columnar" else otlp_payloads(n)
    spans = len(payloads) * SPANS_PER_MESSAGE
    run_dir = workdir / name
    data = run_dir / "data"
    with EmbeddedNats(store_dir=run_dir / "nats") as server:
        asyncio.run(publish(server.url, payloads, content_type))
        del payloads
        baseline = asyncio.run(fetch_and_ack_baseline(server.url, spans // SPANS_PER_MESSAGE))
        log = run_dir / "collect.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "choreoscope.cli", "collect", "--nats", server.url,
             "--data", str(data), "--no-otlp-http", "--log-level", "INFO"],
            stderr=log.open("wb"), stdout=subprocess.DEVNULL,
        )  # fmt: skip
        meter = ProcessTreeMeter(proc.pid)
        try:
            wait_until(lambda: "collector ready" in log.read_text(), timeout=60, interval=0.01)
            span_count = SpanCounter(data)
            cpu_at_start = meter.cpu_seconds()
            started = time.perf_counter()
            done = wait_until(lambda: span_count() >= spans, timeout=600, interval=0.05)
            elapsed = time.perf_counter() - started
            cpu = meter.cpu_seconds() - cpu_at_start
            latencies = asyncio.run(
                visibility_latencies(server.url, span_count, spans, content_type)
            )
        finally:
            proc.terminate()
            proc.wait(60)
            peak = meter.stop()
    rate = spans / elapsed
    baseline_rate = spans / baseline
    print(f"-- {name}: {spans:,} spans in {len(range(0, spans, SPANS_PER_MESSAGE)):,} messages")
    if not done:
        print(f"   NOT DRAINED: only {span_count():,} spans visible after {elapsed:.0f}s")
    print(f"   collector:           {rate:>12,.0f} spans/s   target >= {TARGETS[name]:,}")
    cores = os.cpu_count() or 1
    ceiling = spans / cpu * cores
    print(f"   CPU the collector got: {cpu / elapsed:.2f} of {cores} cores; {cpu_pressure()}")
    print(
        f"   CPU:                 {cpu / spans * 1e6:>12.1f} us a span (collector and workers): "
        f"{ceiling:,.0f} spans/s on {cores} idle cores"
    )
    ratio = rate / baseline_rate
    print(f"   fetch+ack baseline:  {baseline_rate:>12,.0f} spans/s   ratio {ratio:.2f}")
    mib = peak / 2**20
    print(f"   peak RSS:            {mib:>12,.0f} MiB       target < {RSS_TARGET / 2**20:,.0f}")
    print(
        f"   visible to a reader: p50 {statistics.median(latencies):.2f}s, "
        f"max {max(latencies):.2f}s after publish   target <= {VISIBLE_TARGET_S:.0f}s"
    )


async def visibility_latencies(
    url: str, span_count: SpanCounter, already: int, content_type: str
) -> list[float]:
    """Publish one batch at a time into the running collector; time until a reader sees it."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    latencies = []
    expected = already
    for k in range(10):
        start = already + k * SPANS_PER_MESSAGE + 10**9
        payload = (
            columnar_batch(start, SPANS_PER_MESSAGE)
            if content_type == wire.CONTENT_TYPE_COLUMNAR
            else otlp_request(start, SPANS_PER_MESSAGE).SerializeToString()
        )
        published = time.perf_counter()
        await js.publish(
            f"{wire.SPANS_SUBJECT_PREFIX}bench", payload, headers={wire.CONTENT_TYPE: content_type}
        )
        expected += SPANS_PER_MESSAGE
        seen = await asyncio.to_thread(
            wait_until, lambda e=expected: span_count() >= e, timeout=30, interval=0.02
        )
        latencies.append(time.perf_counter() - published if seen else float("inf"))
    await nc.close()
    return latencies


def main(spans: int | None = None, formats: tuple[str, ...] = ("columnar", "otlp")) -> None:
    n = spans or int(os.environ.get("CHOREOSCOPE_BENCH_SPANS", 1_000_000))
    print(f"{os.cpu_count()} cores; {n:,} spans per run, {SPANS_PER_MESSAGE} spans a message")
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp:
        for name in formats:
            run_format(name, n, Path(tmp))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=None, help="spans per run (default 1M)")
    parser.add_argument("--format", choices=("columnar", "otlp"), help="only this run")
    args = parser.parse_args()
    main(args.spans, (args.format,) if args.format else ("columnar", "otlp"))
