"""Scale-out: a 3-node JetStream cluster replicates CHOREO_SPANS, two collectors
share the durable consumer, and a node is killed mid-stream: every span is
stored exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from choreoscope.nats_server import EmbeddedNats, free_port
from collector.streams import ensure_stream
from instrumentation import wire
from tests.collector.batches import columnar_batch
from tests.collector.collector_harness import running_collector, scalar, wait_for_count

COLUMNAR = wire.CONTENT_TYPE_COLUMNAR


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[EmbeddedNats]]:
    cluster_ports = [free_port() for _ in range(3)]
    routes = ",".join(f"nats://127.0.0.1:{p}" for p in cluster_ports)
    nodes = [
        EmbeddedNats(
            store_dir=tmp_path / f"n{i}",
            server_name=f"n{i}",
            log_file=tmp_path / f"n{i}.log",
            extra_args=(
                "--cluster_name",
                "choreo",
                "--cluster",
                f"nats://127.0.0.1:{port}",
                "--routes",
                routes,
            ),
        )
        for i, port in enumerate(cluster_ports)
    ]
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


async def _replicated_stream(urls: list[str]) -> None:
    """Create CHOREO_SPANS with 3 replicas once the cluster has a JetStream leader."""
    nc = await nats.connect(servers=urls)
    try:
        for _ in range(100):
            with contextlib.suppress(Exception):
                await ensure_stream(
                    nc.jetstream(timeout=2), name=wire.SPANS_STREAM,
                    subjects=[wire.SPANS_SUBJECTS], replicas=3, max_age=3600,
                    max_bytes=2**30,
                )  # fmt: skip
                return
            await asyncio.sleep(0.2)
        raise AssertionError("the cluster never elected a JetStream leader")
    finally:
        await nc.close()


async def _publish_until_acked(js, payload: bytes, *, msg_id: str) -> None:
    """Publish through a failover: retry until JetStream acks (the id dedupes retries)."""
    for _ in range(120):
        try:
            await js.publish(
                f"{wire.SPANS_SUBJECT_PREFIX}scorer",
                payload,
                headers={wire.CONTENT_TYPE: COLUMNAR, wire.MSG_ID: msg_id},
            )
            return
        except Exception:  # any bus error during the failover: try again
            await asyncio.sleep(0.25)
    raise AssertionError(f"{msg_id} was never acked by the cluster")


async def test_two_collectors_on_a_three_node_cluster_survive_losing_a_node(
    cluster: list[EmbeddedNats], tmp_path: Path
) -> None:
    urls = [n.url for n in cluster]
    await _replicated_stream(urls)
    data = tmp_path / "data"
    first, second = [urls[0], urls[1]], [urls[1], urls[2]]
    async with (
        running_collector(",".join(first), data, fetch_batch=4, ack_wait=3.0),
        running_collector(",".join(second), data, fetch_batch=4, ack_wait=3.0),
    ):
        nc = await nats.connect(servers=[urls[2], urls[0]])
        js = nc.jetstream(timeout=2)
        for i in range(30):
            if i == 10:
                cluster[1].kill()  # a node both collectors may be connected to
            await _publish_until_acked(js, columnar_batch(i * 10, 10), msg_id=f"batch-{i}")
        stored = (await js.stream_info(wire.SPANS_STREAM)).state.messages
        await nc.close()
        assert stored == 30
        assert await wait_for_count(data, "select count(*) from spans", 300, timeout=60) == 300
    assert scalar(data, "select count(distinct (trace_id, span_id)) from spans") == 300
    writers = {p.name.split("-")[1] for p in (data / "spans").glob("date=*/hour=*/*.parquet")}
    assert len(writers) == 2  # both collectors took a share
