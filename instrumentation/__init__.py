"""Make an agent service traceable across NATS with one call.

    from instrumentation import Agent, configure

    configure(service_name="scorer", nats_url="nats://127.0.0.1:4222")
    agent = Agent("scorer")

    @agent.on("recruit.cv.parsed", queue="scorer")
    async def score(event):
        await event.emit("recruit.candidate.scored", {"score": 0.82})

    await agent.run()

Public names are imported lazily, so ``instrumentation.wire`` and
``instrumentation.errors`` stay cheap for the collector and the store.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    # name -> the module of instrumentation that defines it
    "configure": "telemetry",
    "telemetry_for": "telemetry",
    "Telemetry": "telemetry",
    "NatsSpanProcessor": "nats_span_exporter",
    "ExporterStats": "nats_span_exporter",
    "encode_columnar_batch": "columnar_encoding",
    "decode_columnar_batch": "columnar_encoding",
    "encode_otlp_batch": "otlp_encoding",
    "TracedNats": "traced_client",
    "TracedJetStream": "traced_jetstream",
    "TracedPullSubscription": "traced_jetstream",
    "TracedMsg": "traced_message",
    "TracedSubscription": "traced_message",
    "current_workflow_id": "traced_message",
    "extract_delivered": "propagation",
    "inject_context": "propagation",
    "Delivered": "propagation",
    "Agent": "agent",
    "Event": "event",
    "AgentCounters": "heartbeat",
    "AuditCapture": "audit",
    "Redactor": "audit",
    "ChoreoscopeError": "errors",
    "ConfigurationError": "errors",
    "PublishError": "errors",
    "BadMessageError": "errors",
    "BusUnavailableError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'instrumentation' has no attribute {name!r}")
    return getattr(importlib.import_module(f"instrumentation.{module}"), name)
