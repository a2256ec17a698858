"""JetStream advisories become bus_events, naming the original message; service
heartbeats become heartbeats, including those sent while no collector ran."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from choreoscope.nats_server import EmbeddedNats
from collector.service import CollectorConfig, keep_running, run_collector
from collector.streams import SIGNALS_DURABLE, SIGNALS_STREAM
from instrumentation import wire
from tests.collector.collector_harness import (
    jetstream,
    query,
    running_collector,
    wait_for,
    wait_for_count,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


async def _publish_business_event(js, *, message_id: str) -> None:
    await js.publish(
        "orders.paid",
        b'{"order": 7}',
        headers={
            wire.TRACEPARENT: f"00-{TRACE}-{SPAN}-01",
            wire.MSG_ID: message_id,
            wire.WORKFLOW_ID: "wf-order-7",
        },
    )


async def _fetch_one(sub):
    try:
        (msg,) = await sub.fetch(1, timeout=1.0)
        return msg
    except nats.errors.TimeoutError:
        return None


async def test_terminated_naked_and_dead_lettered_messages_become_bus_events(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with running_collector(nats_server.url, data), jetstream(nats_server.url) as js:
        await js.add_stream(name="ORDERS", subjects=["orders.>"])
        config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_deliver=2, ack_wait=0.4)
        sub = await js.pull_subscribe("orders.>", durable="billing", config=config)
        await _publish_business_event(js, message_id="m-term")
        await (await _fetch_one(sub)).term()
        await _publish_business_event(js, message_id="m-nak")
        await (await _fetch_one(sub)).nak()
        await (await _fetch_one(sub)).ack()  # the nak'ed one, redelivered
        await _publish_business_event(js, message_id="m-hung")
        for _ in range(3):  # never acked: delivered twice, then max deliveries
            await _fetch_one(sub)
            await asyncio.sleep(0.5)
        assert await wait_for_count(data, "select count(*) from bus_events", 3) == 3
    rows = query(
        data,
        "select kind, stream, consumer, subject, message_id, trace_id, span_id, workflow_id,"
        " deliveries from bus_events order by stream_seq",
    )
    assert rows == [
        ("terminated", "ORDERS", "billing", "orders.paid", "m-term", TRACE, SPAN, "wf-order-7", 1),
        ("naked", "ORDERS", "billing", "orders.paid", "m-nak", TRACE, SPAN, "wf-order-7", 1),
        ("max_deliveries", "ORDERS", "billing", "orders.paid", "m-hung", TRACE, SPAN,
         "wf-order-7", 2),
    ]  # fmt: skip


async def test_heartbeat_sent_while_no_collector_runs_is_kept(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with running_collector(nats_server.url, data):
        pass  # the first run creates the signals stream
    beat = {
        "service": "scorer", "instance": "scorer-1", "at": time.time(), "interval_s": 5.0,
        "received": 10, "processed": 9, "failed": 1, "dead_lettered": 0,
        "spans_exported": 40, "spans_dropped": 2, "in_flight": 1,
    }  # fmt: skip
    nc = await nats.connect(nats_server.url)
    await nc.publish(f"{wire.HEARTBEAT_SUBJECT_PREFIX}scorer", json.dumps(beat).encode())
    await nc.publish(f"{wire.HEARTBEAT_SUBJECT_PREFIX}scorer", b"not json")
    await nc.close()
    async with running_collector(nats_server.url, data):
        assert await wait_for_count(data, "select count(*) from heartbeats", 1) == 1
        assert await wait_for_count(data, "select count(*) from rejected", 1) == 1
    assert query(
        data,
        "select service, instance, processed, failed, spans_dropped, in_flight from heartbeats",
    ) == [("scorer", "scorer-1", 9, 1, 2, 1)]
    assert query(data, "select source from rejected") == [("choreo.heartbeat.scorer",)]


async def test_the_last_heartbeat_of_an_instance_that_stops_is_stored_as_such(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    beat = {"service": "scorer", "instance": "scorer-1", "interval_s": 5.0}
    async with running_collector(nats_server.url, data):
        nc = await nats.connect(nats_server.url)
        for at, stopping in ((time.time() - 1, False), (time.time(), True)):
            body = json.dumps({**beat, "at": at, "stopping": stopping}).encode()
            await nc.publish(f"{wire.HEARTBEAT_SUBJECT_PREFIX}scorer", body)
        await nc.publish(  # from an instrumentation that does not say
            f"{wire.HEARTBEAT_SUBJECT_PREFIX}billing",
            json.dumps({"service": "billing", "at": time.time()}).encode(),
        )
        await nc.close()
        assert await wait_for_count(data, "select count(*) from heartbeats", 3) == 3
    assert query(data, 'select service, stopped from heartbeats order by service, "at"') == [
        ("billing", False), ("scorer", False), ("scorer", True),
    ]  # fmt: skip


async def test_heartbeats_with_numbers_out_of_range_are_rejected_and_later_ones_stored(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    subject = f"{wire.HEARTBEAT_SUBJECT_PREFIX}scorer"

    def beat(received: int) -> bytes:
        return json.dumps({"service": "scorer", "at": time.time(), "received": received}).encode()

    async with running_collector(nats_server.url, data):
        pass  # the first run creates the signals stream: a beat before it is lost
    async with running_collector(nats_server.url, data):
        nc = await nats.connect(nats_server.url)
        await nc.publish(subject, beat(1))
        await nc.flush()
        assert await wait_for_count(data, "select count(*) from heartbeats", 1) == 1
        for bad in (
            b'{"service": "scorer", "at": 1.7e18}',  # nanoseconds sent as seconds
            b'{"service": "scorer", "at": 1e400}',  # infinity
            b'{"service": "scorer", "received": 1180591620717411303424}',  # 2**70
        ):
            await nc.publish(subject, bad)
        await nc.publish(subject, beat(2))
        await nc.publish(subject, beat(3))
        await nc.close()
        assert await wait_for_count(data, "select count(*) from heartbeats", 3) == 3
        assert await wait_for_count(data, "select count(*) from rejected", 3) == 3
    assert query(data, "select received from heartbeats order by received") == [(1,), (2,), (3,)]
    reasons = sorted(r for (r,) in query(data, "select reason from rejected"))
    assert "heartbeat 'at' 1.7e+18 is not a Unix time in seconds" in reasons[0]
    assert "heartbeat 'at' inf is not a Unix time in seconds" in reasons[1]
    assert "heartbeat counter 'received' 1180591620717411303424 is not" in reasons[2]


async def test_heartbeats_from_1970_or_with_an_interval_or_counter_no_sender_means_are_rejected(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # were stored: a last beat in 1970, an instance never silent (NaN) or always (0)
    data = tmp_path / "data"
    subject = f"{wire.HEARTBEAT_SUBJECT_PREFIX}scorer"
    now = time.time()
    bad = {
        "at 0": {"at": 0},
        "at -5": {"at": -5},
        "at true": {"at": True},
        "interval NaN": {"at": now, "interval_s": math.nan},
        "interval 0": {"at": now, "interval_s": 0},
        "interval -3": {"at": now, "interval_s": -3},
        "received -12": {"at": now, "received": -12},
    }
    async with running_collector(nats_server.url, data):
        pass  # the first run creates the signals stream: a beat before it is lost
    async with running_collector(nats_server.url, data):
        nc = await nats.connect(nats_server.url)
        for instance, fields in bad.items():
            await nc.publish(
                subject, json.dumps({"service": "scorer", "instance": instance, **fields}).encode()
            )
        await nc.publish(
            subject,
            json.dumps(
                {"service": "scorer", "instance": "ok", "at": now, "interval_s": 5, "received": 0}
            ).encode(),
        )
        await nc.close()
        assert await wait_for_count(data, "select count(*) from rejected", len(bad)) == len(bad)
        assert await wait_for_count(data, "select count(*) from heartbeats", 1) == 1
    assert query(data, "select instance, interval_s from heartbeats") == [("ok", 5.0)]
    reasons = " | ".join(r for (r,) in query(data, "select reason from rejected"))
    for expected in (
        "heartbeat 'at' 0 is not a Unix time in seconds within the years 2000-2100",
        "heartbeat 'at' -5 is not",
        "heartbeat 'at' True is not",
        "heartbeat 'interval_s' nan is not a positive number of seconds",
        "heartbeat 'interval_s' 0 is not",
        "heartbeat 'interval_s' -3 is not",
        "heartbeat counter 'received' -12 is negative",
    ):
        assert expected in reasons


async def test_a_background_task_that_fails_is_logged_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    runs = 0

    async def fails_once() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("store went away")
        stop.set()

    await keep_running("signals", fails_once, stop=stop, first_backoff=0.01)
    assert runs == 2
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "the collector's signals task failed; restarting it" in record.getMessage()
    assert "store went away" in record.exc_text


async def test_a_heartbeat_with_a_status_header_is_stored_and_later_ones_too(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # nats-py's fetch raised on it at every attempt: no heartbeat or advisory was stored
    data = tmp_path / "data"
    subject = f"{wire.HEARTBEAT_SUBJECT_PREFIX}scorer"
    async with running_collector(nats_server.url, data), jetstream(nats_server.url) as js:
        # the signals task makes its stream beside the ready collector: on a busy
        # machine a publish at once found no stream to answer it
        assert await wait_for(lambda: js.stream_info(SIGNALS_STREAM), timeout=10)
        for received, headers in ((1, {"Status": "500"}), (2, None)):
            beat = {"service": "scorer", "at": time.time(), "received": received}
            await js.publish(subject, json.dumps(beat).encode(), headers=headers)
        assert await wait_for_count(data, "select count(*) from heartbeats", 2, timeout=10) == 2


async def test_a_deleted_signals_stream_is_created_again_and_heartbeats_stored(
    nats_server: EmbeddedNats, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    subject = f"{wire.HEARTBEAT_SUBJECT_PREFIX}scorer"
    async with running_collector(nats_server.url, data), jetstream(nats_server.url) as js:
        # the consumer too: deleted before the signals task made it, the stream is
        # missing at start, not lost while consuming (a restart, logged as an error)
        assert await wait_for(lambda: js.consumer_info(SIGNALS_STREAM, SIGNALS_DURABLE), timeout=10)
        await js.delete_stream(SIGNALS_STREAM)
        assert await wait_for(lambda: js.stream_info(SIGNALS_STREAM), timeout=10)
        beat = {"service": "scorer", "at": time.time(), "received": 1}
        await js.publish(subject, json.dumps(beat).encode())
        assert await wait_for_count(data, "select count(*) from heartbeats", 1, timeout=10) == 1
    # recovered as planned, not by the signals task crashing with a traceback
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_trickle_of_heartbeats_is_written_together_not_a_segment_each(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # a segment is written per fetch: a fetch that returned at its first heartbeat
    # wrote one file per heartbeat, for readers to list and compaction to merge
    data = tmp_path / "data"
    subject = f"{wire.HEARTBEAT_SUBJECT_PREFIX}scorer"
    async with (
        running_collector(nats_server.url, data, flush_interval=1.0),
        jetstream(nats_server.url) as js,
    ):
        assert await wait_for(lambda: js.consumer_info(SIGNALS_STREAM, SIGNALS_DURABLE), timeout=10)
        for received in range(5):  # within a tenth of the flush interval
            beat = {"service": "scorer", "at": time.time(), "received": received}
            await js.publish(subject, json.dumps(beat).encode())
            await asyncio.sleep(0.03)
        assert await wait_for_count(data, "select count(*) from heartbeats", 5, timeout=10) == 5
    segments = [p for p in (data / "heartbeats").rglob("*.parquet") if p.name != "_schema.parquet"]
    assert len(segments) <= 2  # one, or two if a fetch ended amid them


async def test_a_heartbeat_is_stored_with_when_the_collector_got_it_by_its_own_clock(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # the sender's clock runs an hour behind: the correlator judges silence on the
    # collector's clock, or this instance would look silent while it beats
    data = tmp_path / "data"
    sent = time.time()
    async with running_collector(nats_server.url, data):
        nc = await nats.connect(nats_server.url)
        beat = {"service": "scorer", "instance": "scorer-1", "at": sent - 3600}
        await nc.publish(f"{wire.HEARTBEAT_SUBJECT_PREFIX}scorer", json.dumps(beat).encode())
        await nc.close()
        assert await wait_for_count(data, "select count(*) from heartbeats", 1) == 1
    ((behind_s, stored_after_s),) = query(
        data,
        f'select epoch(received_at) - epoch("at"), epoch(received_at) - {sent} from heartbeats',
    )
    assert 3590 < behind_s < 3700
    assert -1 < stored_after_s < 60


async def test_the_signals_stream_exists_once_the_collector_says_it_is_ready(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # it was created by a background task after "ready": a heartbeat sent at once by a
    # service started with the collector reached no stream, and was lost. Looked up the
    # moment the collector says it is ready, before that task has had a turn
    nc = await nats.connect(nats_server.url)
    looked_up: list[asyncio.Future] = []
    config = CollectorConfig(
        data_dir=tmp_path / "data", servers=[nats_server.url], flush_interval=0.2,
        otlp_http=None, decode_workers=0, maintenance_interval=3600.0,
    )  # fmt: skip
    stop = asyncio.Event()

    def on_ready(_: str) -> None:
        looked_up.append(asyncio.ensure_future(nc.jetstream().stream_info(SIGNALS_STREAM)))

    collector = asyncio.create_task(run_collector(config, stop=stop, on_ready=on_ready))
    try:
        await wait_for(lambda: bool(looked_up), timeout=20)
        info = await looked_up[0]  # NotFoundError: no stream yet
    finally:
        stop.set()
        await asyncio.wait_for(collector, 30)
        await nc.close()
    assert f"{wire.HEARTBEAT_SUBJECT_PREFIX}>" in info.config.subjects


async def test_a_heartbeat_without_at_delivered_twice_is_one_beat_and_a_bad_service_is_refused(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # was: stamped with the collector's clock, a redelivery was a second beat; and a
    # service {"a": 1} was stored as the text "{'a': 1}"
    data = tmp_path / "data"
    subject = f"{wire.HEARTBEAT_SUBJECT_PREFIX}scorer"
    async with running_collector(nats_server.url, data):
        pass  # the first run creates the signals stream
    nc = await nats.connect(nats_server.url)
    await nc.publish(subject, json.dumps({"service": "scorer", "instance": "s-1"}).encode())
    await nc.publish(subject, json.dumps({"service": {"a": 1}, "instance": "s-2"}).encode())
    await nc.flush()
    async with running_collector(nats_server.url, data):
        assert await wait_for_count(data, "select count(*) from heartbeats", 1) == 1
        assert await wait_for_count(data, "select count(*) from rejected", 1) == 1
    # delivered again: the consumer is made anew and reads the stream from its start
    await nc.jetstream().delete_consumer(SIGNALS_STREAM, SIGNALS_DURABLE)
    await nc.close()
    async with running_collector(nats_server.url, data):
        beats = f"read_parquet('{data}/heartbeats/date=*/**/*.parquet')"
        assert await wait_for_count(data, f"select count(*) from {beats}", 2) == 2
    assert query(data, "select service, instance from heartbeats") == [("scorer", "s-1")]
    reasons = [r for (r,) in query(data, "select distinct reason from rejected")]
    assert reasons == [
        """unreadable signal (ValueError): heartbeat 'service' {"a": 1} is not a string"""
    ]
