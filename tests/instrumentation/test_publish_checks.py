"""A publish that cannot mean what its caller meant is refused before anything is sent,
with what to write instead, and leaves no publish span for the correlator to wait on."""

from __future__ import annotations

import datetime as dt

import pytest

from instrumentation import (
    Agent,
    ConfigurationError,
    EventDataError,
    PayloadTypeError,
    TracedNats,
    wire,
)
from tests.instrumentation.deterministic_spans import eventually, in_memory_telemetry, read_stream

FAST = {"fetch_timeout": 0.2, "heartbeat_interval": 5, "drain_timeout": 5, "ack_wait": 5}


@pytest.mark.parametrize("subject", ["docs.*", "docs.>", "docs..received", "docs received"])
async def test_agent_refuses_to_start_a_workflow_on_a_subject_it_cannot_publish_to(
    nats_server, raw_nats, subject
):
    telemetry, spans = in_memory_telemetry("intake")
    async with Agent("intake", nats_url=nats_server.url, telemetry=telemetry, **FAST) as agent:
        await agent.start_workflow("docs.received", {"doc": "a"})  # creates the stream
        with pytest.raises(ConfigurationError, match="publish to a"):
            await agent.start_workflow(subject, {"doc": "b"})
        await agent.start_workflow("docs.received", {"doc": "c"})  # the bus still works
    stored = await read_stream(raw_nats.jetstream(), wire.EVENTS_STREAM, ">")
    assert [(m.subject, m.data) for m in stored] == [
        ("docs.received", b'{"doc":"a"}'),
        ("docs.received", b'{"doc":"c"}'),
    ]
    assert [s.name for s in spans.get_finished_spans()] == ["publish docs.received"] * 2


async def test_handler_emitting_to_a_wildcard_fails_with_what_to_do(nats_server, run_agents):
    telemetry, _ = in_memory_telemetry("extractor")
    agent = Agent(
        "extractor", nats_url=nats_server.url, telemetry=telemetry, max_deliveries=1, **FAST
    )
    errors: list[BaseException] = []

    @agent.on("docs.received")
    async def extract(event):
        try:
            await event.emit("docs.*", {"text": "hello"})
        except Exception as exc:
            errors.append(exc)
            raise

    await run_agents(agent)
    await agent.start_workflow("docs.received", {"doc": "a"})
    await eventually(lambda: agent.counters.dead_lettered == 1)
    assert isinstance(errors[0], ConfigurationError)
    assert "the wildcards '*' and '>' only subscribe" in str(errors[0])


async def test_traced_nats_refuses_to_publish_to_a_wildcard(nats_server):
    telemetry, spans = in_memory_telemetry("billing")
    async with await TracedNats.connect(
        nats_server.url, service_name="billing", telemetry=telemetry
    ) as nc:
        with pytest.raises(ConfigurationError, match="publish to a concrete subject"):
            await nc.publish("orders.>", b"{}")
        with pytest.raises(ConfigurationError, match="publish to a concrete subject"):
            await nc.request("pricing.*", b"{}", timeout=0.5)
    assert spans.get_finished_spans() == ()


@pytest.mark.parametrize("payload", ["hello", {"doc": "a"}, None])
async def test_traced_nats_refuses_a_payload_that_is_not_bytes_and_says_how_to_encode(
    nats_server, payload
):
    telemetry, spans = in_memory_telemetry("billing")
    async with await TracedNats.connect(
        nats_server.url, service_name="billing", telemetry=telemetry
    ) as nc:
        with pytest.raises(PayloadTypeError, match=r"not bytes; encode it first"):
            await nc.publish("orders.paid", payload)
        with pytest.raises(PayloadTypeError, match=r"not bytes; encode it first"):
            await nc.jetstream().publish("orders.paid", payload)
        await nc.publish("orders.paid", bytearray(b"{}"))  # bytes-like still goes out
    # no publish span of an event that never left: the correlator would wait for it
    assert [s.name for s in spans.get_finished_spans()] == ["publish orders.paid"]


async def test_agent_refuses_data_that_is_not_json_naming_the_subject(nats_server, raw_nats):
    # a datetime raised a bare "Object of type datetime is not JSON serializable"
    telemetry, spans = in_memory_telemetry("intake")
    async with Agent("intake", nats_url=nats_server.url, telemetry=telemetry, **FAST) as agent:
        with pytest.raises(EventDataError) as refused:
            await agent.start_workflow("docs.received", {"at": dt.datetime(2026, 11, 27)})
        assert isinstance(refused.value, TypeError)  # what json.dumps raised, for callers
        assert "could not publish to 'docs.received': its data is not JSON" in str(refused.value)
        assert ".isoformat()" in str(refused.value)
    assert spans.get_finished_spans() == ()  # no publish span for an event never sent
