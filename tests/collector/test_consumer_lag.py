"""Every JetStream consumer's lag is sampled into consumer_lag: how far behind it is
and what it holds unacked, also across a spell of an unwritable store."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from choreoscope.nats_server import EmbeddedNats
from collector.consumer_lag import ConsumerLagSampler
from collector.segment_writer import SegmentWriter
from store import StoreLayout
from tests.collector.collector_harness import (
    block_todays_partition,
    jetstream,
    query,
    running_collector,
    wait_for,
)

LATEST_BILLING = """
    SELECT filter_subject, durable, num_pending, num_ack_pending, delivered_stream_seq,
           ack_floor_stream_seq
    FROM consumer_lag WHERE stream = 'ORDERS' AND consumer = 'billing'
    ORDER BY "at" DESC LIMIT 1
"""


async def test_a_consumers_backlog_and_unacked_messages_are_sampled(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with (
        running_collector(nats_server.url, data, consumer_lag_interval=0.2),
        jetstream(nats_server.url) as js,
    ):
        await js.add_stream(name="ORDERS", subjects=["orders.>"])
        config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, filter_subject="orders.paid")
        sub = await js.pull_subscribe("orders.paid", durable="billing", config=config)
        for n in range(5):
            await js.publish("orders.paid", f'{{"order": {n}}}'.encode())
        first, second = await sub.fetch(2, timeout=2)
        await first.ack()  # the second stays delivered and unacked; three wait

        expected = ("orders.paid", True, 3, 1, 2, 1)
        assert await wait_for(lambda: query(data, LATEST_BILLING) == [expected])
        await second.ack()


async def test_lag_sampled_while_the_store_is_unwritable_is_written_once_it_is_back(
    nats_server: EmbeddedNats, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    today = block_todays_partition(data, "consumer_lag")
    caplog.set_level(logging.ERROR, logger="collector")
    async with jetstream(nats_server.url) as js:
        # billing exists before the collector's first sample: a refused sample could
        # otherwise predate it, and every sample naming it come after the store was back
        await js.add_stream(name="ORDERS", subjects=["orders.>"])
        config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT)
        await js.pull_subscribe("orders.>", durable="billing", config=config)
        await js.publish("orders.paid", b"{}")
        async with running_collector(nats_server.url, data, consumer_lag_interval=0.2):

            def refused() -> bool:
                return any("cannot write consumer lag" in r.message for r in caplog.records)

            assert await wait_for(refused)
            blocked_until = dt.datetime.now(dt.UTC)
            today.unlink()  # space is back

            def sampled_while_blocked() -> int:
                return query(
                    data,
                    "SELECT count(*) FROM consumer_lag WHERE consumer = 'billing' AND \"at\" < ?",
                    [blocked_until],
                )[0][0]

            assert await wait_for(sampled_while_blocked)
    assert "for the next try" in caplog.text


async def test_consumers_past_the_apis_first_page_are_sampled_too(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with jetstream(nats_server.url) as js:
        await js.add_stream(name="ORDERS", subjects=["orders.>"])
        for n in range(300):  # the JetStream API lists 256 consumers a page
            await js.add_consumer("ORDERS", ConsumerConfig(durable_name=f"group-{n:03d}"))
    async with running_collector(nats_server.url, data, consumer_lag_interval=0.2):

        def sampled() -> int:
            return query(
                data,
                "SELECT count(DISTINCT consumer) FROM consumer_lag WHERE stream = 'ORDERS'",
            )[0][0]

        assert await wait_for(lambda: sampled() == 300)


async def test_a_bus_that_refuses_lag_requests_is_reported_once_not_every_sample(
    nats_server: EmbeddedNats, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    layout = StoreLayout.at(tmp_path / "data")
    layout.ensure()
    nc = await nats.connect(nats_server.url)
    writer = SegmentWriter(layout=layout)
    # an API prefix nothing answers, as for a user not allowed the JetStream API
    sampler = ConsumerLagSampler(
        js=nc.jetstream(prefix="$JS.REFUSED.API", timeout=1), writer=writer, interval=10
    )
    caplog.set_level(logging.DEBUG, logger="collector")
    try:
        for _ in range(3):
            await sampler.sample_once()
    finally:
        writer.close()
        await nc.close()

    refusals = [r for r in caplog.records if "cannot read JetStream consumer lag" in r.message]
    assert [r.levelname for r in refusals] == ["WARNING", "DEBUG", "DEBUG"]
