"""Heartbeats: each live Agent says so on ``choreo.heartbeat.<service>`` with its counters.

The format is DESIGN.md's (Heartbeats): counters are totals since the instance
started, so a collector can tell "never arrived", "arrived but hung" and
"telemetry lost" apart.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from instrumentation.nats_span_exporter import ExporterStats


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
        }
    ).encode()
