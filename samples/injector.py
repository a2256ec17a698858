"""Faults injected honestly, inside the agents, so the correlator sees them as in production.

- hang: the handler really never returns;
- slow: the handler really sleeps, far past the step's usual latency;
- crash: the step's code really raises, on every delivery, until it is dead-lettered;
- poison: the workflow's input is really unreadable (the generator makes it so);
- drop: the result is really lost: published fire-and-forget on core NATS with a
  stale ``Nats-Expected-Stream`` (a stream renamed since), which JetStream refuses
  without telling the publisher;
- deviation: the step really emits an event the choreography does not allow;
- lost_telemetry: the step really overflows its exporter's queue with a burst of
  spans (a model call traced token by token) while the exporter's thread is starved
  of CPU, so spans are dropped and counted;
- duplicate: the step really finishes after its ack deadline (``ack_wait``, which is
  also its ``max_processing``: no keep-alive holds the message longer), so JetStream
  really redelivers the message and the step processes it twice;
- consumer_down: the service really stops (see ``samples.pipeline``).

Each injected fault is recorded once in the ground truth, when it happens. The
pipeline's handlers call ``before(event)`` on entry and ``emit(...)`` to send
their results; everything else they do is plain domain code.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from instrumentation import Telemetry, TracedNats, wire
from instrumentation.errors import ChoreoscopeError
from samples.faults import Fault, GroundTruth

log = logging.getLogger(__name__)

# the stream name a "dropping" publisher still pins: the stream was renamed since
STALE_STREAM = wire.EVENTS_STREAM + "_V0"
EXPECTED_STREAM_HEADER = "Nats-Expected-Stream"
# the span queue the sample services run with: the OpenTelemetry SDK's default size
STALE_QUEUE_SPANS = 2048
FLUSH_TIMEOUT_SECONDS = 10.0
STARVED_SWITCH_INTERVAL_SECONDS = 5.0
# the faults carried out on entry to a handler; the others act when it emits
ON_ENTRY = frozenset({"hang", "slow", "crash", "lost_telemetry"})


class InjectedCrashError(ChoreoscopeError):
    """The crash a fault plan asked for: the step's code raised."""

    def __init__(self, *, step: str) -> None:
        super().__init__(f"{step} crashed (an injected fault: the step raised on this input)")


@dataclass
class FaultInjector:
    """The faults planned per workflow, and the hooks that carry them out in a step."""

    truth: GroundTruth
    slow_seconds: float
    ack_wait: float
    span_burst: int = 3 * STALE_QUEUE_SPANS
    planned: dict[str, Fault] = field(default_factory=dict)
    _recorded: set[tuple[str, str]] = field(default_factory=set)

    def plan(self, workflow_id: str, fault: Fault) -> None:
        self.planned[workflow_id] = fault

    def fault_at(self, workflow_id: str | None, step: str) -> Fault | None:
        fault = self.planned.get(workflow_id or "")
        return fault if fault is not None and fault.step == step else None

    def record(self, workflow_id: str, fault: Fault, *, subject: str | None = None) -> None:
        """Write the fault to the ground truth, once per workflow and fault."""
        key = (workflow_id, fault.name)
        if key in self._recorded:
            return
        self._recorded.add(key)
        self.truth.record(workflow_id=workflow_id, fault=fault, subject=subject)
        log.info("injected %s at %s in workflow %s", fault.name, fault.step, workflow_id)

    async def before(self, event: Any, *, step: str, telemetry: Telemetry) -> None:
        """On entry to ``step``'s handler: hang, be slow, crash or lose spans, as planned."""
        fault = self.fault_at(event.workflow_id, step)
        if fault is None or fault.name not in ON_ENTRY:
            return
        self.record(event.workflow_id, fault, subject=event.subject)
        if fault.name == "hang":
            await asyncio.Event().wait()  # never set: the handler hangs for good
        elif fault.name == "slow":
            await asyncio.sleep(self.slow_seconds)
        elif fault.name == "crash":
            raise InjectedCrashError(step=step)
        elif fault.name == "lost_telemetry" and event.attempt == 1:
            flood_exporter(telemetry, spans=self.span_burst)

    async def emit(
        self,
        event: Any,
        subject: str,
        data: Mapping[str, Any],
        *,
        step: str,
        bus: TracedNats,
        deviation_subject: str | None = None,
    ) -> None:
        """Send ``step``'s result: normally, lost (drop), or as the wrong event (deviation)."""
        fault = self.fault_at(event.workflow_id, step)
        message_id = follow_up_id(event, subject)
        if fault is not None and fault.name == "deviation" and deviation_subject:
            self.record(event.workflow_id, fault, subject=deviation_subject)
            await event.emit(deviation_subject, dict(data), message_id=message_id)
            return
        if fault is not None and fault.name == "drop":
            self.record(event.workflow_id, fault, subject=subject)
            await bus.publish(
                subject,
                json.dumps(dict(data)).encode(),
                headers={EXPECTED_STREAM_HEADER: STALE_STREAM},
                message_id=message_id,
                workflow_id=event.workflow_id,
            )
            return
        await event.emit(subject, dict(data), message_id=message_id)
        if fault is not None and fault.name == "duplicate" and event.attempt == 1:
            # the work is done, but the ack comes too late: JetStream redelivers the
            # message and the step processes it a second time
            self.record(event.workflow_id, fault, subject=event.subject)
            await asyncio.sleep(self.ack_wait + 0.5)


def flood_exporter(telemetry: Telemetry, *, spans: int) -> None:
    """A burst of spans while the exporter's thread gets no CPU, as on a busy host: its
    bounded queue overflows and it drops (and counts) the rest.

    Synchronous on purpose, flush included: nothing else of this process runs until
    the queue has room again, so only the burst's own spans are lost.
    """
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(STARVED_SWITCH_INTERVAL_SECONDS)
    try:
        for token in range(spans):
            with telemetry.tracer.start_as_current_span("llm token") as span:
                span.set_attribute("gen_ai.token.index", token)
    finally:
        sys.setswitchinterval(switch_interval)
    telemetry.force_flush(timeout=FLUSH_TIMEOUT_SECONDS)


def follow_up_id(event: Any, subject: str) -> str:
    """The id of the event a step emits in reply to ``event``: the same on every
    redelivery, so JetStream drops a re-emitted copy (an idempotent producer)."""
    seed = f"{event.message_id or event.workflow_id}>{subject}".encode()
    return hashlib.sha256(seed).hexdigest()[:32]
