"""Ingest: every span from the bus into the trace store, none lost, fast.

    from collector import CollectorConfig, run_collector

    config = CollectorConfig(data_dir=Path("choreoscope-data"), servers=["nats://127.0.0.1:4222"])
    await run_collector(config, stop=asyncio.Event())   # until the event is set

What runs: a durable pull consumer on ``CHOREO_SPANS`` (``span_ingest``) whose
payloads (``decoding``: columnar msgpack, OTLP protobuf, OTLP JSON) are decoded
and written as Parquet segments by worker processes (``decode_pool``,
``segment_writer``), acked only once durable; heartbeats and JetStream advisories
(``signal_ingest``); the OTLP/HTTP receiver (``otlp_http``); compaction and
retention (``maintenance``). ``choreoscope collect`` is the command line.

Public names are imported lazily, so a decode worker process stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"CollectorConfig": "service", "run_collector": "service"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'collector' has no attribute {name!r}")
    return getattr(importlib.import_module(f"collector.{module}"), name)
