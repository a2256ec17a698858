"""The segment schemas of the trace store, and its version.

Every Parquet segment of a table has that table's Arrow schema. Columns may be
added (views read segments with ``union_by_name``), and tables (a store that
predates one gets its seed from the next collector or reader to open it: see
``StoreLayout.ensure_seeds``); renaming or retyping a column is a new
``SCHEMA_VERSION``, and so is any change of layout that a release reading the
previous version would take for data gone (it checks the version, and refuses
any other, with what to do).

Times are UTC microseconds. Ids are lowercase hex. ``attributes``, ``resource``,
``events`` and ``links`` are JSON text: the long tail stays flexible, while the
columns queries join on are promoted (DESIGN.md, performance notes).
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

# 2: the correlator's findings are folders of immutable generations
# (correlator/findings_files.py), not one file per table replaced in place
SCHEMA_VERSION: Final = 2
# stores this version opens as they are and upgrades. A store of version 1 is read
# as it is (its findings files become their tables' first generations) and marked 2
# once a correlator of this version takes its findings for writing: from then on the
# files a release of version 1 reads go stale, then away, and it would read no
# finding, so alert every anomaly again. It refuses a store of version 2.
UPGRADES_FROM: Final = frozenset({1})

TIMESTAMP = pa.timestamp("us", tz="UTC")

SPANS = pa.schema(
    [
        ("trace_id", pa.string()),  # 32 hex chars
        ("span_id", pa.string()),  # 16 hex chars
        ("parent_span_id", pa.string()),  # null for a root span
        ("name", pa.string()),
        ("kind", pa.string()),  # internal | server | client | producer | consumer | unspecified
        ("service_name", pa.string()),
        ("service_instance_id", pa.string()),
        ("scope_name", pa.string()),
        ("start_time", TIMESTAMP),
        ("end_time", TIMESTAMP),
        ("duration_ms", pa.float64()),
        ("status_code", pa.string()),  # unset | ok | error
        ("status_message", pa.string()),
        ("attributes", pa.string()),  # JSON object
        ("resource", pa.string()),  # JSON object
        ("events", pa.string()),  # JSON array of {name, time_unix_nano, attributes}, or null
        ("links", pa.string()),  # JSON array of {trace_id, span_id, attributes}, or null
        # promoted from attributes / links, for joins
        ("workflow_id", pa.string()),  # choreo.workflow.id
        ("subject", pa.string()),  # messaging.destination.name
        ("message_id", pa.string()),  # messaging.message.id
        ("operation", pa.string()),  # messaging.operation.type
        ("consumer_group", pa.string()),  # messaging.consumer.group.name
        ("link_trace_id", pa.string()),  # first link
        ("link_span_id", pa.string()),
        ("nak_delay_ms", pa.float64()),  # choreo.nak.delay_ms: a nak's redelivery delay
        # ingest metadata
        ("received_at", TIMESTAMP),
        ("exporter_id", pa.string()),
        # comma-separated notes: "attribute_truncated", "invalid_utf8", "several_links"
        ("ingest_flags", pa.string()),
        # from the exporter's headers: a gap in batch_seq per exporter_id is a lost batch,
        # spans_dropped its running total of spans it could not send (telemetry_gap)
        ("exporter_batch_seq", pa.int64()),
        ("exporter_spans_dropped", pa.int64()),
    ]
)

BUS_EVENTS = pa.schema(
    [
        ("kind", pa.string()),  # max_deliveries | terminated | naked
        ("stream", pa.string()),
        ("consumer", pa.string()),
        ("stream_seq", pa.int64()),
        ("deliveries", pa.int64()),
        ("subject", pa.string()),  # the original message's subject, when it could be read back
        ("message_id", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("workflow_id", pa.string()),
        ("reason", pa.string()),
        ("at", TIMESTAMP),
        ("raw", pa.string()),  # the advisory, JSON
    ]
)

REJECTED = pa.schema(
    [
        ("received_at", TIMESTAMP),
        ("source", pa.string()),  # e.g. "nats:choreo.spans.scorer", "otlp-http"
        # a message's first 100 span-level rejects have a row each (raw: the span); one
        # summary row counts the rest by reason (raw: the message): collector/rejects.py
        ("reason", pa.string()),
        ("size", pa.int64()),  # bytes of the whole refused input
        ("raw", pa.binary()),  # the input, capped at RAW_CAP_BYTES
        # the JetStream message it came in (its stream sequence; null over HTTP): a
        # message redelivered after a crash writes its rejects again, as the same rows
        ("stream_seq", pa.int64()),
    ]
)

HEARTBEATS = pa.schema(
    [
        ("service", pa.string()),
        ("instance", pa.string()),
        ("at", TIMESTAMP),
        ("received", pa.int64()),
        ("processed", pa.int64()),
        ("failed", pa.int64()),
        ("dead_lettered", pa.int64()),
        ("spans_exported", pa.int64()),
        ("spans_dropped", pa.int64()),
        ("in_flight", pa.int64()),
        ("interval_s", pa.float64()),
        ("stopped", pa.bool_()),  # its last beat: the instance stopped on purpose
        # when the collector stored it, by its own clock: silence is judged on it, as
        # `at` is the sender's clock, which may run behind or ahead
        ("received_at", TIMESTAMP),
    ]
)

# One sample of one JetStream consumer, taken by the collector every few seconds:
# the newest sample of a consumer is its lag now.
CONSUMER_LAG = pa.schema(
    [
        ("at", TIMESTAMP),  # when the collector sampled it
        ("stream", pa.string()),
        ("consumer", pa.string()),  # the consumer's name (a durable's is the durable name)
        ("durable", pa.bool_()),
        ("filter_subject", pa.string()),  # its filter subjects, comma-separated; null: all
        ("num_pending", pa.int64()),  # in the stream, not yet delivered to it
        ("num_ack_pending", pa.int64()),  # delivered, not yet acked
        ("num_redelivered", pa.int64()),  # delivered more than once, not yet acked
        ("num_waiting", pa.int64()),  # pull requests waiting for messages
        ("delivered_stream_seq", pa.int64()),  # the stream sequence last delivered
        ("ack_floor_stream_seq", pa.int64()),  # every message up to it is acked
        ("last_delivered_at", TIMESTAMP),
    ]
)

RAW_CAP_BYTES: Final = 64 * 1024

TABLES: Final[dict[str, pa.Schema]] = {
    "spans": SPANS,
    "bus_events": BUS_EVENTS,
    "rejected": REJECTED,
    "heartbeats": HEARTBEATS,
    "consumer_lag": CONSUMER_LAG,
}
