"""The traced nats-py wrapper: every hop of a message shows up in one trace."""

from __future__ import annotations

import asyncio

import nats
from nats.js.api import ConsumerConfig

from instrumentation import TracedNats, semconv, wire
from tests.instrumentation.deterministic_spans import eventually, in_memory_telemetry, only_span


async def _connect(url: str, service: str, telemetry) -> TracedNats:
    return await TracedNats.connect(url, service_name=service, telemetry=telemetry)


async def test_callback_process_span_is_child_of_publish_span_and_links_to_it(nats_server):
    telemetry, exported = in_memory_telemetry("billing")
    got: asyncio.Queue = asyncio.Queue()
    async with await _connect(nats_server.url, "billing", telemetry) as nc:

        async def handle(msg):
            await got.put(msg)

        await nc.subscribe("orders.placed", queue="billing", cb=handle)
        message_id = await nc.publish("orders.placed", b"{}", workflow_id="order-7")
        msg = await asyncio.wait_for(got.get(), 10)

    publish = only_span(exported, "publish orders.placed")
    process = only_span(exported, "process orders.placed")
    assert publish["kind"] == "PRODUCER"
    assert process["kind"] == "CONSUMER"
    assert process["trace_id"] == publish["trace_id"]
    assert process["parent_span_id"] == publish["span_id"]
    assert process["links"] == [publish["span_id"]]
    assert process["attributes"] == {
        semconv.MESSAGING_SYSTEM: "nats",
        semconv.MESSAGING_DESTINATION_NAME: "orders.placed",
        semconv.MESSAGING_OPERATION_TYPE: "process",
        semconv.MESSAGING_OPERATION_NAME: "process",
        semconv.MESSAGING_MESSAGE_ID: message_id,
        semconv.MESSAGING_CONSUMER_GROUP: "billing",
        semconv.CHOREO_WORKFLOW_ID: "order-7",
    }
    assert publish["attributes"][semconv.MESSAGING_OPERATION_TYPE] == "send"
    assert msg.headers[wire.MSG_ID] == message_id
    assert msg.headers[wire.WORKFLOW_ID] == "order-7"
    assert msg.headers[wire.TRACEPARENT].split("-")[2] == publish["span_id"]
    assert msg.workflow_id == "order-7" and msg.attempt == 1


async def test_publish_inside_a_handler_stays_in_the_same_workflow_and_trace(nats_server):
    telemetry, exported = in_memory_telemetry("billing")
    done = asyncio.Event()
    async with await _connect(nats_server.url, "billing", telemetry) as nc:

        async def first(msg):
            await nc.publish("orders.billed", b"{}")

        async def second(msg):
            done.set()

        await nc.subscribe("orders.placed", cb=first)
        await nc.subscribe("orders.billed", cb=second)
        await nc.publish("orders.placed", b"{}", workflow_id="order-8")
        await asyncio.wait_for(done.wait(), 10)

    billed = only_span(exported, "publish orders.billed")
    placed = only_span(exported, "process orders.placed")
    assert billed["parent_span_id"] == placed["span_id"]
    assert billed["attributes"][semconv.CHOREO_WORKFLOW_ID] == "order-8"
    assert only_span(exported, "process orders.billed")["trace_id"] == placed["trace_id"]


async def test_async_iterator_records_a_receive_span_per_message(nats_server):
    telemetry, exported = in_memory_telemetry("audit")
    async with await _connect(nats_server.url, "audit", telemetry) as nc:
        sub = await nc.subscribe("orders.*")
        await nc.publish("orders.placed", b"1")
        await nc.publish("orders.paid", b"2")
        received = []
        async for msg in sub.messages:
            received.append(msg.subject)
            if len(received) == 2:
                break
    assert received == ["orders.placed", "orders.paid"]
    receive = only_span(exported, "receive orders.paid")
    assert receive["attributes"][semconv.MESSAGING_OPERATION_TYPE] == "receive"
    assert receive["parent_span_id"] == only_span(exported, "publish orders.paid")["span_id"]


async def test_request_reply_has_client_and_server_spans_in_one_trace(nats_server):
    telemetry, exported = in_memory_telemetry("pricing")
    async with await _connect(nats_server.url, "pricing", telemetry) as nc:

        async def quote(msg):
            await msg.respond(b"42")

        await nc.subscribe("pricing.quote", cb=quote)
        reply = await nc.request("pricing.quote", b"{}", timeout=5)
    assert reply.data == b"42"
    client = only_span(exported, "request pricing.quote")
    server = only_span(exported, "process pricing.quote")
    assert client["kind"] == "CLIENT"
    assert server["kind"] == "SERVER"
    assert server["parent_span_id"] == client["span_id"]


async def test_jetstream_pull_consumer_records_receive_process_and_settle_spans(nats_server):
    telemetry, exported = in_memory_telemetry("scorer")
    async with await _connect(nats_server.url, "scorer", telemetry) as nc:
        js = nc.jetstream()
        await js.add_stream(name="RECRUIT", subjects=["recruit.>"])
        ack = await js.publish("recruit.cv.parsed", b"{}", workflow_id="wf-1")
        psub = await js.pull_subscribe(
            "recruit.cv.parsed", durable="scorer", config=ConsumerConfig(ack_wait=30)
        )
        [first] = await psub.fetch(1, timeout=5)
        assert first.attempt == 1
        with first.processing():
            pass
        await first.nak()
        [second] = await psub.fetch(1, timeout=5)
        assert second.attempt == 2
        await second.in_progress()
        await second.term()

    publish = only_span(exported, "publish recruit.cv.parsed")
    assert publish["attributes"][semconv.NATS_STREAM] == "RECRUIT"
    assert publish["attributes"][semconv.NATS_STREAM_SEQUENCE] == ack.seq
    receives = [s for s in exported.get_finished_spans() if s.name == "receive recruit.cv.parsed"]
    assert [s.attributes[semconv.NATS_DELIVERY_COUNT] for s in receives] == [1, 2]
    assert {s.kind.name for s in receives} == {"CLIENT"}
    process = only_span(exported, "process recruit.cv.parsed")
    nak = only_span(exported, "nak recruit.cv.parsed")
    term = only_span(exported, "term recruit.cv.parsed")
    assert nak["parent_span_id"] == process["span_id"]
    assert nak["attributes"][semconv.MESSAGING_OPERATION_TYPE] == "settle"
    assert term["attributes"][semconv.NATS_DELIVERY_COUNT] == 2
    in_progress = only_span(exported, "in_progress recruit.cv.parsed")
    assert in_progress["attributes"][semconv.MESSAGING_OPERATION_NAME] == "in_progress"
    assert term["attributes"][semconv.MESSAGING_CONSUMER_GROUP] == "scorer"


async def test_jetstream_push_callback_is_processed_then_acked(nats_server):
    telemetry, exported = in_memory_telemetry("shipper")
    done = asyncio.Event()
    async with await _connect(nats_server.url, "shipper", telemetry) as nc:
        js = nc.jetstream()
        await js.add_stream(name="ORDERS", subjects=["orders.>"])

        async def ship(msg):
            done.set()

        await js.subscribe("orders.paid", durable="shipper", queue="shipper", cb=ship)
        await js.publish("orders.paid", b"{}")
        await asyncio.wait_for(done.wait(), 10)
        await eventually(
            lambda: any(s.name == "ack orders.paid" for s in exported.get_finished_spans())
        )
        for _ in range(100):  # the ack is a publish: the server applies it a moment later
            info = await js.consumer_info("ORDERS", "shipper")
            if info.num_ack_pending == 0:
                break
            await asyncio.sleep(0.05)
    process = only_span(exported, "process orders.paid")
    ack = only_span(exported, "ack orders.paid")
    assert process["parent_span_id"] == only_span(exported, "publish orders.paid")["span_id"]
    assert ack["parent_span_id"] == process["span_id"]
    assert info.num_ack_pending == 0


async def test_headers_are_read_case_insensitively_and_nats_trace_headers_ignored(nats_server):
    telemetry, exported = in_memory_telemetry("billing")
    got: asyncio.Queue = asyncio.Queue()
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    async with await _connect(nats_server.url, "billing", telemetry) as nc:
        await nc.subscribe("orders.placed", cb=got.put)
        raw = await nats.connect(nats_server.url)
        await raw.publish(
            "orders.placed",
            b"{}",
            headers={
                "Traceparent": f"00-{trace_id}-b7ad6b7169203331-01",
                "Nats-Trace-Dest": "trace.dest",
                "CHOREO-WORKFLOW-ID": "wf-go",
            },
        )
        msg = await asyncio.wait_for(got.get(), 10)
        await raw.close()
    process = only_span(exported, "process orders.placed")
    assert process["trace_id"] == trace_id
    assert process["parent_span_id"] == "b7ad6b7169203331"
    assert semconv.CHOREO_CONTEXT_BROKEN not in process["attributes"]
    assert msg.workflow_id == "wf-go"


async def test_a_traced_client_reconnects_after_an_outage_longer_than_nats_py_gives_up_on(
    nats_server,
):
    # nats-py stops reconnecting after 60 attempts (~2 min at its pace): a TracedNats
    # service outlived the outage alive but deaf, as an Agent never is
    telemetry, _ = in_memory_telemetry("notifier")
    got: asyncio.Queue = asyncio.Queue()
    nc = await TracedNats.connect(
        nats_server.url, service_name="notifier", telemetry=telemetry,
        reconnect_time_wait=0.02,  # its 60 attempts take ~2 s here, not ~2 min
    )  # fmt: skip
    try:

        async def handle(msg):
            await got.put(msg.data)

        await nc.subscribe("loan.decided", cb=handle)
        await asyncio.to_thread(nats_server.stop)
        await asyncio.sleep(5)  # past 60 attempts
        await asyncio.to_thread(nats_server.start)

        async def publish_once_back() -> None:
            while True:
                try:
                    await nc.publish("loan.decided", b"yes")
                    await nc.flush(timeout=1)
                    return
                except Exception:
                    await asyncio.sleep(0.2)

        await asyncio.wait_for(publish_once_back(), 20)
        assert await asyncio.wait_for(got.get(), 10) == b"yes"
    finally:
        await nc.close()
