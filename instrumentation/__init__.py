"""Make an agent service traceable across NATS with one call.

    from instrumentation import Agent, configure

    configure(service_name="scorer", nats_url="nats://127.0.0.1:4222")
    agent = Agent("scorer", nats_url="nats://127.0.0.1:4222")

    @agent.on("recruit.cv.parsed", queue="scorer")
    async def score(event):     # event.data .subject .workflow_id .message_id .attempt
        await event.emit("recruit.candidate.scored", {"score": 0.82})

    await agent.run()           # until cancelled (or agent.stop()); drains in-flight work

The pieces:

- ``configure(service_name=..., nats_url=...)`` returns a ``Telemetry`` handle
  (``tracer_provider``, ``tracer``, ``stats()``, ``force_flush()``, ``shutdown()``)
  whose spans go to ``choreo.spans.<service>`` (columnar msgpack, or stock OTLP
  with ``encoding="otlp"``). ``install_global=False`` lets one process host several
  services; an application's existing SDK provider is added to, not replaced.
- ``Agent(name, ...)`` consumes through JetStream (stream ``CHOREO_EVENTS`` unless
  ``stream=``), retries with ``backoff``, dead-letters to ``dlq.<subject>`` after
  ``max_deliveries``, heartbeats on ``choreo.heartbeat.<name>``, and records
  inputs and outputs on spans when ``audit=True`` (through ``redact``).
  ``Agent(name, delivery="core")`` uses plain NATS instead: queue subscriptions
  and publish without acks, several times cheaper, at most once (no storage, no
  retries; a failed step is dead-lettered at once, best effort).
- ``TracedNats.connect(url, service_name=...)`` wraps a plain nats-py client, and
  its ``jetstream()`` the JetStream context, with the same spans and headers.

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
    "PayloadTooLargeError": "errors",
    "NoStreamCapturesError": "errors",
    "PayloadTypeError": "errors",
    "EventDataError": "errors",
    "BadMessageError": "errors",
    "BusUnavailableError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'instrumentation' has no attribute {name!r}")
    return getattr(importlib.import_module(f"instrumentation.{module}"), name)
