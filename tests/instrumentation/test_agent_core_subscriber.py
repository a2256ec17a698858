"""A core NATS subscriber on an Agent's subject (`nats sub '>'` while debugging) is
a responder that sends no JetStream ack: the Agent's first publish met it instead
of "no responders", and timed out without saying why."""

from __future__ import annotations

import pytest

from instrumentation import Agent, NoStreamCapturesError
from tests.instrumentation.deterministic_spans import eventually, in_memory_telemetry

# short, so that the publish the core subscriber swallows gives up soon
QUICK = {"publish_timeout": 0.5, "heartbeat_interval": 5}


async def _subscribe_to_everything(raw_nats) -> list[str]:
    seen: list[str] = []

    async def note(msg) -> None:
        seen.append(msg.subject)

    await raw_nats.subscribe(">", cb=note)
    await raw_nats.flush()
    return seen


async def test_an_agent_publishes_to_its_stream_while_a_core_subscriber_listens(
    nats_server, raw_nats, caplog
):
    seen = await _subscribe_to_everything(raw_nats)
    telemetry, _ = in_memory_telemetry("intake")
    agent = Agent("intake", nats_url=nats_server.url, telemetry=telemetry, **QUICK)

    with caplog.at_level("WARNING", logger="instrumentation.event_publisher"):
        async with agent:
            await agent.start_workflow("shop.order.placed", {"order": 1})

    info = await raw_nats.jetstream().stream_info("CHOREO_EVENTS")
    assert info.config.subjects == ["shop.>"]
    assert info.state.messages == 1  # stored once, though published twice
    await eventually(lambda: "shop.order.placed" in seen)  # the debugger still sees it
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "a core NATS subscriber on it received the publish, which is not a stream" in warning


async def test_a_subject_its_stream_subjects_leave_out_fails_saying_why(nats_server, raw_nats):
    await _subscribe_to_everything(raw_nats)
    telemetry, _ = in_memory_telemetry("intake")
    agent = Agent(
        "intake",
        nats_url=nats_server.url,
        telemetry=telemetry,
        stream_subjects=["orders.>"],
        **QUICK,
    )

    async with agent:
        with pytest.raises(NoStreamCapturesError) as raised:
            await agent.start_workflow("shop.order.placed", {"order": 1})

    message = str(raised.value)
    assert "no JetStream stream captures it" in message
    assert "a core NATS subscriber on it" in message
    assert "add a subject that matches it to stream_subjects=" in message
    assert raised.value.transient is False
