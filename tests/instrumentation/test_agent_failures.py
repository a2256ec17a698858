"""Handler failures and bad input: retried with backoff, then dead-lettered, never a
crash or a hot redelivery loop."""

from __future__ import annotations

import asyncio

import nats
import pytest

from instrumentation import Agent, semconv, wire
from tests.instrumentation.deterministic_spans import (
    eventually,
    in_memory_telemetry,
    only_span,
    read_stream,
    spans_named,
)

FAST = {"fetch_timeout": 0.2, "heartbeat_interval": 5, "drain_timeout": 5, "ack_wait": 5}


async def test_failed_step_is_retried_with_backoff_and_its_error_recorded(nats_server, run_agents):
    telemetry, spans = in_memory_telemetry("scorer")
    agent = Agent("scorer", nats_url=nats_server.url, telemetry=telemetry, backoff=(0.05,), **FAST)
    attempts = []

    @agent.on("recruit.cv.parsed")
    async def score(event):
        attempts.append(event.attempt)
        if event.attempt == 1:
            raise RuntimeError("model timed out")

    await run_agents(agent)
    await agent.start_workflow("recruit.cv.parsed", {"cv": 1})
    await eventually(lambda: attempts == [1, 2] and agent.counters.processed == 1)

    failed, succeeded = spans_named(spans, "process recruit.cv.parsed")
    assert failed["status"] == "ERROR" and "exception" in failed["events"]
    assert failed["attributes"][semconv.NATS_DELIVERY_COUNT] == 1
    assert succeeded["status"] == "UNSET"
    assert succeeded["attributes"][semconv.NATS_DELIVERY_COUNT] == 2
    assert only_span(spans, "nak recruit.cv.parsed")["parent_span_id"] == failed["span_id"]
    assert agent.counters.failed == 1 and agent.counters.dead_lettered == 0


async def test_cancelled_error_raised_by_a_handler_is_a_failure_retried_at_once(
    nats_server, run_agents
):
    telemetry, spans = in_memory_telemetry("scorer")
    agent = Agent(
        "scorer",
        nats_url=nats_server.url,
        telemetry=telemetry,
        backoff=(0.05,),
        **{**FAST, "ack_wait": 30},
    )
    attempts = []

    @agent.on("recruit.cv.parsed")
    async def score(event):
        attempts.append(event.attempt)
        if event.attempt == 1:
            raise asyncio.CancelledError  # a library giving up, not the agent stopping

    await run_agents(agent)
    await agent.start_workflow("recruit.cv.parsed", {"cv": 1})
    # naked with the backoff, not left unsettled until ack_wait (30 s) runs out
    await eventually(lambda: attempts == [1, 2] and agent.counters.processed == 1, timeout=5)
    assert agent.counters.failed == 1
    failed, _ = spans_named(spans, "process recruit.cv.parsed")
    assert failed["status"] == "ERROR"
    assert only_span(spans, "nak recruit.cv.parsed")["parent_span_id"] == failed["span_id"]


async def test_after_max_deliveries_the_event_goes_to_the_dead_letter_subject(
    nats_server, run_agents, raw_nats
):
    telemetry, spans = in_memory_telemetry("scorer")
    agent = Agent(
        "scorer",
        nats_url=nats_server.url,
        telemetry=telemetry,
        max_deliveries=3,
        backoff=(0.01,),
        **FAST,
    )
    attempts = []

    @agent.on("recruit.cv.parsed")
    async def score(event):
        attempts.append(event.attempt)
        raise ValueError("no skills section")

    await run_agents(agent)
    workflow_id = await agent.start_workflow(
        "recruit.cv.parsed", {"cv": 1}, headers={"X-Tenant": "acme"}
    )
    await eventually(lambda: agent.counters.dead_lettered == 1)
    await asyncio.sleep(0.3)  # a term is final: no fourth delivery
    assert attempts == [1, 2, 3]

    [dead] = await read_stream(raw_nats.jetstream(), wire.DEAD_LETTER_STREAM, "dlq.>")
    assert dead.subject == "dlq.recruit.cv.parsed"
    assert dead.data == b'{"cv":1}'
    assert dead.headers["X-Tenant"] == "acme"
    assert dead.headers[wire.WORKFLOW_ID] == workflow_id
    assert wire.TRACEPARENT in dead.headers
    assert "no skills section" in dead.headers[wire.DEAD_LETTER_REASON]
    assert dead.headers[wire.DEAD_LETTER_SERVICE] == "scorer"
    assert dead.headers[wire.DEAD_LETTER_DELIVERIES] == "3"

    last = spans_named(spans, "process recruit.cv.parsed")[-1]
    assert last["attributes"][semconv.CHOREO_DEAD_LETTERED] is True
    assert "no skills section" in last["attributes"][semconv.CHOREO_DEAD_LETTER_REASON]
    assert only_span(spans, "publish dlq.recruit.cv.parsed")["parent_span_id"] == last["span_id"]
    assert only_span(spans, "term recruit.cv.parsed")["parent_span_id"] == last["span_id"]


async def _publish_raw_and_expect_dead_letter(
    nats_server, run_agents, raw_nats, *, data: bytes, headers: dict | None, reason: str
):
    telemetry, spans = in_memory_telemetry("scorer")
    agent = Agent("scorer", nats_url=nats_server.url, telemetry=telemetry, **FAST)
    calls = []

    @agent.on("recruit.cv.parsed")
    async def score(event):
        calls.append(event)

    await run_agents(agent)
    await raw_nats.jetstream().publish("recruit.cv.parsed", data, headers=headers)
    await eventually(lambda: agent.counters.dead_lettered == 1)
    await asyncio.sleep(0.3)
    assert calls == []
    assert agent.counters.received == 1  # dead-lettered at once, not redelivered
    [dead] = await read_stream(raw_nats.jetstream(), wire.DEAD_LETTER_STREAM, "dlq.>")
    assert dead.data == data
    assert reason in dead.headers[wire.DEAD_LETTER_REASON]
    process = only_span(spans, "process recruit.cv.parsed")
    assert process["status"] == "ERROR"
    assert reason in process["attributes"][semconv.CHOREO_DEAD_LETTER_REASON]
    return dead


async def test_non_json_body_for_a_json_handler_is_dead_lettered_at_once(
    nats_server, run_agents, raw_nats
):
    await _publish_raw_and_expect_dead_letter(
        nats_server, run_agents, raw_nats, data=b"<cv>not json</cv>", headers=None,
        reason="not JSON",
    )  # fmt: skip


async def test_non_utf8_body_is_dead_lettered_at_once(nats_server, run_agents, raw_nats):
    await _publish_raw_and_expect_dead_letter(
        nats_server, run_agents, raw_nats, data=b"\xff\xfe{}", headers=None, reason="not UTF-8"
    )


async def test_non_utf8_header_is_dead_lettered_at_once(nats_server, run_agents):
    # nats-py cannot send invalid UTF-8 in a header, so write the protocol by hand
    reader, writer = await asyncio.open_connection(nats_server.host, nats_server.port)
    await reader.readline()  # INFO
    nc = await nats.connect(nats_server.url)
    await nc.jetstream().add_stream(name=wire.EVENTS_STREAM, subjects=["recruit.>"])
    await nc.close()
    header_block = b"NATS/1.0\r\nX-Note: caf\xe9\r\n\r\n"
    body = b"{}"
    writer.write(b'CONNECT {"verbose":false,"headers":true}\r\n')
    writer.write(
        b"HPUB recruit.cv.parsed %d %d\r\n%s%s\r\nPING\r\n"
        % (len(header_block), len(header_block) + len(body), header_block, body)
    )
    await writer.drain()
    telemetry, spans = in_memory_telemetry("scorer")
    agent = Agent("scorer", nats_url=nats_server.url, telemetry=telemetry, **FAST)
    calls = []

    @agent.on("recruit.cv.parsed")
    async def score(event):
        calls.append(event)

    await run_agents(agent)
    await eventually(lambda: agent.counters.dead_lettered == 1)
    writer.close()
    assert calls == []
    process = only_span(spans, "process recruit.cv.parsed")
    assert "not valid UTF-8" in process["attributes"][semconv.CHOREO_DEAD_LETTER_REASON]


async def test_oversized_headers_are_dead_lettered_at_once(nats_server, run_agents, raw_nats):
    await raw_nats.jetstream().add_stream(name=wire.EVENTS_STREAM, subjects=["recruit.>"])
    await _publish_raw_and_expect_dead_letter(
        nats_server,
        run_agents,
        raw_nats,
        data=b"{}",
        headers={"X-Blob": "x" * 20_000},
        reason="more than the",
    )


async def test_a_failing_handler_is_logged_with_its_error_and_what_happens_next(
    nats_server, run_agents, caplog
):
    telemetry, _ = in_memory_telemetry("scorer")
    agent = Agent(
        "scorer",
        nats_url=nats_server.url,
        telemetry=telemetry,
        backoff=(0.05,),
        max_deliveries=2,
        **FAST,
    )

    @agent.on("recruit.cv.parsed")
    async def score(event):
        raise KeyError("skills")

    await run_agents(agent)
    with caplog.at_level("WARNING", logger="instrumentation.agent_delivery"):
        workflow = await agent.start_workflow("recruit.cv.parsed", {"cv": 1})
        await eventually(lambda: agent.counters.dead_lettered == 1)
    lines = [r.getMessage() for r in caplog.records]
    retried = next(line for line in lines if "retrying" in line)
    assert "score" in retried and workflow in retried and "attempt 1 of 2" in retried
    assert "KeyError: 'skills'" in retried
    dead = next(line for line in lines if "dead-lettered" in line)
    assert "dlq.recruit.cv.parsed" in dead and workflow in dead and "KeyError" in dead


async def test_an_event_over_max_payload_says_so_instead_of_blaming_the_stream(nats_server):
    from instrumentation import PayloadTooLargeError, PublishError

    telemetry, _ = in_memory_telemetry("intake")
    agent = Agent("intake", nats_url=nats_server.url, telemetry=telemetry, **FAST)
    try:
        with pytest.raises(PayloadTooLargeError) as caught:
            await agent.start_workflow("recruit.application.received", {"cv": "x" * 2_000_000})
    finally:
        await agent.close()
    assert isinstance(caught.value, PublishError) and not caught.value.transient
    assert "max_payload" in str(caught.value) and "stream" not in str(caught.value)
