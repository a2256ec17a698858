"""Heartbeats: each live Agent says so on ``choreo.heartbeat.<service>`` with its counters.

The format is DESIGN.md's (Heartbeats): counters are totals since the instance
started, so a collector can tell "never arrived", "arrived but hung" and
"telemetry lost" apart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from instrumentation import semconv, wire
from instrumentation.nats_span_exporter import ExporterStats
from instrumentation.telemetry import Telemetry

log = logging.getLogger(__name__)


@dataclass
class AgentCounters:
    """Totals since this Agent instance started."""

    received: int = 0
    processed: int = 0
    failed: int = 0
    dead_lettered: int = 0
    in_flight: int = 0


def heartbeat_payload(
    *,
    service: str,
    instance: str,
    interval_s: float,
    counters: AgentCounters,
    exporter: ExporterStats | None,
    at: float | None = None,
    stopping: bool = False,
) -> bytes:
    return json.dumps(
        {
            "service": service,
            "instance": instance,
            "at": time.time() if at is None else at,
            "interval_s": interval_s,
            "received": counters.received,
            "processed": counters.processed,
            "failed": counters.failed,
            "dead_lettered": counters.dead_lettered,
            "spans_exported": exporter.spans_exported if exporter else 0,
            "spans_dropped": exporter.spans_dropped if exporter else 0,
            "in_flight": counters.in_flight,
            # its last beat: the instance stops on purpose, and is not silent by accident
            "stopping": stopping,
        }
    ).encode()


def instance_id(telemetry: Telemetry, service: str) -> str:
    """The provider's ``service.instance.id``, else one made up for this process."""
    resource = getattr(telemetry.tracer_provider, "resource", None)
    instance = resource.attributes.get(semconv.SERVICE_INSTANCE_ID) if resource else None
    return str(instance) if instance else f"{service}-{os.getpid()}-{os.urandom(4).hex()}"


class HeartbeatPublisher:
    """Publishes one service instance's heartbeat now and every ``interval`` seconds."""

    def __init__(
        self,
        *,
        service: str,
        instance: str,
        interval: float,
        counters: AgentCounters,
        telemetry: Telemetry,
        connection: Callable[[], Any],
    ) -> None:
        self.subject = wire.HEARTBEAT_SUBJECT_PREFIX + service
        self._service = service
        self._instance = instance
        self._interval = interval
        self._counters = counters
        self._telemetry = telemetry
        self._connection = connection

    async def run(self) -> None:
        while True:
            await self.send()
            await asyncio.sleep(self._interval)

    async def send(self, *, stopping: bool = False) -> None:
        """Publish a beat now; ``stopping``: the instance's last, as it stops."""
        payload = heartbeat_payload(
            service=self._service,
            instance=self._instance,
            interval_s=self._interval,
            counters=self._counters,
            exporter=self._telemetry.stats(),
            stopping=stopping,
        )
        try:
            await self._connection().publish(self.subject, payload)
        except Exception as exc:  # NATS away: the next beat will tell
            log.debug("heartbeat of %s not sent: %s", self._service, exc)
