"""Synthetic spans shaped exactly like real instrumentations emit them.

``OurSpans`` follows DESIGN.md's wire contract (choreoscope's instrumentation):
publish PRODUCER ``send``; ``receive`` CLIENT ended on arrival; ``process``
CONSUMER, child of the publish span and linked to it; settle CLIENT (``ack``,
``nak``, ``term``); ``choreo.workflow.id``, ``messaging.message.id`` and
``messaging.consumer.group.name`` on every span.

``ForeignSpans`` is shaped like another language's OpenTelemetry NATS
instrumentation: standard messaging attributes only (no ``choreo.*``, no message
id, no consumer group), a process span that is the child of the publish span or,
``links_only``, the root of a new trace that links back to it.

Rows go to a real store through ``SegmentWriter``. Ids and times are
deterministic so tests can name what they expect.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from collector.segment_writer import SegmentWriter
from instrumentation import semconv
from store import StoreLayout
from store.schema import BUS_EVENTS, CONSUMER_LAG, HEARTBEATS, SPANS

T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    """``T0`` plus ``seconds``: every test speaks in offsets from one fixed instant."""
    return T0 + dt.timedelta(seconds=seconds)


@dataclass
class Published:
    """What a publish left behind: enough for consumers to point back at it."""

    trace_id: str
    span_id: str
    message_id: str | None
    subject: str
    workflow_id: str | None
    at: float


@dataclass
class SpanLog:
    """Collects span rows, heartbeats, bus events and consumer lag samples; writes
    them into a store."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    bus_events: list[dict[str, Any]] = field(default_factory=list)
    consumer_lag: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def new_id(self, width: int = 16) -> str:
        return f"{next(self._ids):0{width}x}"

    def add(self, **row: Any) -> dict[str, Any]:
        start, end = row.pop("start"), row.pop("end")
        row.setdefault("span_id", self.new_id())
        row.update(
            start_time=at(start),
            end_time=at(end),
            duration_ms=(end - start) * 1000.0,
            received_at=at(end + 0.1),
        )
        row.setdefault("status_code", "unset")
        row.setdefault("resource", json.dumps({semconv.SERVICE_NAME: row["service_name"]}))
        self.rows.append(row)
        return row

    def heartbeat(
        self,
        service: str,
        *,
        at_s: float,
        instance: str | None = None,
        spans_dropped: int = 0,
        interval_s: float = 1.0,
        stopped: bool = False,
        skew_s: float = 0.0,
    ) -> None:
        """A beat the collector stored at ``at_s``, stamped by a sender whose clock is
        ``skew_s`` off (negative: behind)."""
        self.heartbeats.append(
            {
                "service": service,
                "instance": instance or f"{service}-1",
                "at": at(at_s + skew_s),
                "received_at": at(at_s),
                "received": 0,
                "processed": 0,
                "failed": 0,
                "dead_lettered": 0,
                "spans_exported": 0,
                "spans_dropped": spans_dropped,
                "in_flight": 0,
                "interval_s": interval_s,
                "stopped": stopped,
            }
        )

    def heartbeats_every(self, service: str, *, start: float, stop: float, **kw: Any) -> None:
        t = start
        while t <= stop:
            self.heartbeat(service, at_s=t, **kw)
            t += kw.get("interval_s", 1.0)

    def lag_sample(self, consumer: str, *, at_s: float, backlog: int, subject: str) -> None:
        """What the collector samples of a JetStream durable ``consumer`` filtering
        ``subject``: ``backlog`` messages not yet delivered to it."""
        self.consumer_lag.append(
            {
                "at": at(at_s), "stream": "RECRUIT", "consumer": consumer, "durable": True,
                "filter_subject": subject, "num_pending": backlog, "num_ack_pending": 0,
                "num_redelivered": 0, "num_waiting": 0,
            }
        )  # fmt: skip

    def bus_event(self, kind: str, published: Published, *, at_s: float, consumer: str) -> None:
        self.bus_events.append(
            {
                "kind": kind,
                "stream": "RECRUIT",
                "consumer": consumer,
                "stream_seq": len(self.bus_events) + 1,
                "deliveries": 3,
                "subject": published.subject,
                "message_id": published.message_id,
                "trace_id": published.trace_id,
                "span_id": published.span_id,
                "workflow_id": published.workflow_id,
                "at": at(at_s),
                "raw": "{}",
            }
        )

    def write(
        self,
        layout: StoreLayout,
        *,
        filed_at: dt.datetime = T0,
        written_at: dt.datetime | None = None,
    ) -> None:
        """Write what was collected as segments of the hour partition of ``filed_at``
        (the hour the collector got them), dated ``written_at`` (default: now) on the
        file system, where a correlator reads when a segment was written."""
        writer = SegmentWriter(layout=layout)
        try:
            for table, rows, schema in (
                ("spans", self.rows, SPANS),
                ("heartbeats", self.heartbeats, HEARTBEATS),
                ("bus_events", self.bus_events, BUS_EVENTS),
                ("consumer_lag", self.consumer_lag, CONSUMER_LAG),
            ):
                if rows:
                    path = writer.write(
                        table, pa.Table.from_pylist(rows, schema=schema), at=filed_at
                    )
                    if written_at is not None:
                        os.utime(path, (written_at.timestamp(), written_at.timestamp()))
        finally:
            writer.close()
        self.rows, self.heartbeats, self.bus_events, self.consumer_lag = [], [], [], []


class OurSpans:
    """Spans as choreoscope's instrumentation emits them."""

    def __init__(self, log: SpanLog) -> None:
        self.log = log

    def _attributes(self, subject: str, operation: str, name: str, **extra: Any) -> str:
        attributes = {
            semconv.MESSAGING_SYSTEM: "nats",
            semconv.MESSAGING_DESTINATION_NAME: subject,
            semconv.MESSAGING_OPERATION_TYPE: operation,
            semconv.MESSAGING_OPERATION_NAME: name,
        }
        attributes.update({k: v for k, v in extra.items() if v is not None})
        return json.dumps(attributes)

    def publish(
        self,
        service: str,
        subject: str,
        *,
        workflow_id: str,
        at_s: float,
        trace_id: str | None = None,
        parent_span_id: str | None = None,
        message_id: str | None = None,
    ) -> Published:
        trace_id = trace_id or self.log.new_id(32)
        message_id = message_id or f"msg-{self.log.new_id(8)}"
        row = self.log.add(
            trace_id=trace_id,
            parent_span_id=parent_span_id,
            name=semconv.span_name("publish", subject),
            kind="producer",
            service_name=service,
            service_instance_id=f"{service}-1",
            start=at_s,
            end=at_s + 0.001,
            attributes=self._attributes(
                subject,
                "send",
                "publish",
                **{
                    semconv.MESSAGING_MESSAGE_ID: message_id,
                    semconv.CHOREO_WORKFLOW_ID: workflow_id,
                },
            ),
            workflow_id=workflow_id,
            subject=subject,
            message_id=message_id,
            operation="send",
        )
        return Published(trace_id, row["span_id"], message_id, subject, workflow_id, at_s)

    def _consumer(
        self,
        published: Published,
        *,
        service: str,
        group: str | None,
        operation: str,
        op_name: str,
        kind: str,
        start: float,
        end: float,
        parent_span_id: str | None,
        status_code: str = "unset",
        status_message: str | None = None,
        instance: str | None = None,
        nak_delay_ms: float | None = None,
    ) -> dict[str, Any]:
        return self.log.add(
            trace_id=published.trace_id,
            parent_span_id=parent_span_id,
            name=semconv.span_name(op_name, published.subject),
            kind=kind,
            service_name=service,
            service_instance_id=instance or f"{service}-1",
            start=start,
            end=end,
            status_code=status_code,
            status_message=status_message,
            attributes=self._attributes(
                published.subject,
                operation,
                op_name,
                **{
                    semconv.MESSAGING_MESSAGE_ID: published.message_id,
                    semconv.MESSAGING_CONSUMER_GROUP: group,
                    semconv.CHOREO_WORKFLOW_ID: published.workflow_id,
                    semconv.CHOREO_NAK_DELAY_MS: nak_delay_ms,
                },
            ),
            links=json.dumps([{"trace_id": published.trace_id, "span_id": published.span_id}]),
            link_trace_id=published.trace_id,
            link_span_id=published.span_id,
            workflow_id=published.workflow_id,
            subject=published.subject,
            message_id=published.message_id,
            operation=operation,
            consumer_group=group,
            nak_delay_ms=nak_delay_ms,
        )

    def receive(
        self,
        published: Published,
        *,
        service: str,
        at_s: float,
        group: str | None = None,
        instance: str | None = None,
    ) -> None:
        """The short span ended on arrival, before the handler runs."""
        self._consumer(
            published, service=service, group=group or service, operation="receive",
            op_name="receive", kind="client", start=at_s, end=at_s, instance=instance,
            parent_span_id=published.span_id,
        )  # fmt: skip

    def process(
        self,
        published: Published,
        *,
        service: str,
        start: float,
        end: float,
        group: str | None = None,
        error: str | None = None,
        settle: str | None = "ack",
        nak_delay_s: float | None = None,
        settle_at: float | None = None,
    ) -> str:
        """Receive, process (child of the publish, linked to it) and settle; the
        process span's id, to parent what the handler publishes. ``nak_delay_s``: the
        redelivery delay a ``nak`` settle span records; ``settle_at``: when the handler
        settled (default: as the attempt ended; earlier, from inside the handler)."""
        group = group or service
        self.receive(published, service=service, at_s=start, group=group)
        span = self._consumer(
            published, service=service, group=group, operation="process", op_name="process",
            kind="consumer", start=start, end=end, parent_span_id=published.span_id,
            status_code="error" if error else "unset", status_message=error,
        )  # fmt: skip
        if settle:
            self._consumer(
                published, service=service, group=group, operation="settle", op_name=settle,
                kind="client", start=settle_at or end, end=settle_at or end,
                parent_span_id=span["span_id"],
                nak_delay_ms=None if nak_delay_s is None else nak_delay_s * 1000,
            )  # fmt: skip
        return span["span_id"]

    def step(
        self,
        published: Published,
        *,
        service: str,
        start: float,
        end: float,
        emits: str,
        group: str | None = None,
    ) -> Published:
        """A consumer that processes a message and publishes the next event."""
        span_id = self.process(published, service=service, start=start, end=end, group=group)
        return self.publish(
            service, emits, workflow_id=published.workflow_id or published.trace_id,
            at_s=end - 0.002, trace_id=published.trace_id, parent_span_id=span_id,
        )  # fmt: skip


def _messaging(subject: str, operation: str) -> str:
    """The standard messaging attributes of a span, as every instrumentation sets them."""
    return json.dumps({
        semconv.MESSAGING_SYSTEM: "nats",
        semconv.MESSAGING_DESTINATION_NAME: subject,
        semconv.MESSAGING_OPERATION_TYPE: operation,
    })  # fmt: skip


class ForeignSpans:
    """Spans as another language's OpenTelemetry NATS instrumentation emits them:
    standard messaging attributes only."""

    def __init__(self, log: SpanLog, *, links_only: bool = False) -> None:
        self.log = log
        self.links_only = links_only

    def publish(
        self,
        service: str,
        subject: str,
        *,
        at_s: float,
        trace_id: str | None = None,
        parent_span_id: str | None = None,
    ) -> Published:
        trace_id = trace_id or self.log.new_id(32)
        row = self.log.add(
            trace_id=trace_id, parent_span_id=parent_span_id, name=f"send {subject}",
            kind="producer", service_name=service, start=at_s, end=at_s + 0.001,
            attributes=_messaging(subject, "send"), subject=subject, operation="send",
        )  # fmt: skip
        return Published(trace_id, row["span_id"], None, subject, None, at_s)

    def process(
        self,
        published: Published,
        *,
        service: str,
        start: float,
        end: float,
        error: str | None = None,
    ) -> tuple[str, str]:
        """The process span; returns its ``(trace_id, span_id)``."""
        link = json.dumps([{"trace_id": published.trace_id, "span_id": published.span_id}])
        trace_id = self.log.new_id(32) if self.links_only else published.trace_id
        row = self.log.add(
            trace_id=trace_id,
            parent_span_id=None if self.links_only else published.span_id,
            name=f"process {published.subject}", kind="consumer", service_name=service,
            start=start, end=end, status_code="error" if error else "unset",
            status_message=error,
            attributes=_messaging(published.subject, "process"),
            links=link if self.links_only else None,
            link_trace_id=published.trace_id if self.links_only else None,
            link_span_id=published.span_id if self.links_only else None,
            subject=published.subject, operation="process",
        )  # fmt: skip
        return trace_id, row["span_id"]

    def process_untraced(self, subject: str, *, service: str, start: float, end: float) -> str:
        """A process span of a message whose producer is not traced: the root of its
        own trace, naming no message. Returns its trace id."""
        trace_id = self.log.new_id(32)
        self.log.add(
            trace_id=trace_id, parent_span_id=None, name=f"process {subject}", kind="consumer",
            service_name=service, start=start, end=end,
            attributes=_messaging(subject, "process"), subject=subject, operation="process",
        )  # fmt: skip
        return trace_id

    def step(
        self, published: Published, *, service: str, start: float, end: float, emits: str
    ) -> Published:
        trace_id, span_id = self.process(published, service=service, start=start, end=end)
        return self.publish(
            service, emits, at_s=end - 0.002, trace_id=trace_id, parent_span_id=span_id
        )
