"""Span rows shaped like the instrumentation's, for the dashboard's fixture store.

One hop of a choreographed workflow is what ``instrumentation.messaging_spans``
emits: a ``publish <subject>`` PRODUCER span at the producer, then at the
consumer a short ``receive <subject>`` CLIENT span (ended on arrival) and a
``process <subject>`` CONSUMER span, child of the publish span and linked to it,
with the promoted columns of the columnar span batch (DESIGN.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from instrumentation import semconv
from store.schema import CONSUMER_LAG, HEARTBEATS, SPANS


@dataclass
class Published:
    """A message on the bus: what its consumers need to point at."""

    trace_id: str
    span_id: str
    subject: str
    message_id: str
    workflow_id: str
    at: dt.datetime


@dataclass
class ScenarioSpans:
    """Accumulates span rows with deterministic ids; ``table()`` gives the Arrow rows."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def new_trace_id(self) -> str:
        return f"{next(self._ids):032x}"

    def _span_id(self) -> str:
        return f"{next(self._ids):016x}"

    def publish(
        self,
        *,
        service: str,
        subject: str,
        workflow_id: str,
        at: dt.datetime,
        trace_id: str,
        parent_span_id: str | None = None,
        extra_attributes: dict[str, Any] | None = None,
    ) -> Published:
        span_id = self._span_id()
        message_id = hashlib.sha256(span_id.encode()).hexdigest()[:26]
        attributes = {
            semconv.MESSAGING_SYSTEM: semconv.MESSAGING_SYSTEM_NATS,
            semconv.MESSAGING_DESTINATION_NAME: subject,
            semconv.MESSAGING_OPERATION_TYPE: semconv.OP_SEND,
            semconv.MESSAGING_OPERATION_NAME: "publish",
            semconv.MESSAGING_MESSAGE_ID: message_id,
            semconv.CHOREO_WORKFLOW_ID: workflow_id,
            **(extra_attributes or {}),
        }
        self._add(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent_span_id,
            name=semconv.span_name("publish", subject),
            kind="producer",
            service=service,
            start=at,
            end=at + dt.timedelta(milliseconds=2),
            attributes=attributes,
            operation=semconv.OP_SEND,
            subject=subject,
            message_id=message_id,
            workflow_id=workflow_id,
        )
        return Published(trace_id, span_id, subject, message_id, workflow_id, at)

    def consume(
        self,
        message: Published,
        *,
        service: str,
        wait: dt.timedelta,
        processing: dt.timedelta,
        attempt: int = 1,
        error: str | None = None,
        audit: tuple[str, str] | None = None,
        in_trace: str | None = None,
        in_workflow: str | None = None,
        settle: str | None = None,
        hangs: bool = False,
    ) -> str:
        """The receive and process spans of one delivery; returns the process span id.

        ``hangs``: the handler never returns, so only the receive span (ended on
        arrival) exists; returns the receive span's id.

        ``settle``: the handler settled the message itself (``nak``, ``term``) as it
        returned, a settle span the child of the process span.

        ``in_trace``/``in_workflow``: a consumer that handles the message inside a
        trace (and workflow) of its own, linked to the publish span only, as batch
        consumers do.
        """
        received = message.at + wait
        trace_id = in_trace or message.trace_id
        parent = None if in_trace else message.span_id
        workflow_id = in_workflow or message.workflow_id
        common = {
            semconv.MESSAGING_SYSTEM: semconv.MESSAGING_SYSTEM_NATS,
            semconv.MESSAGING_DESTINATION_NAME: message.subject,
            semconv.MESSAGING_MESSAGE_ID: message.message_id,
            semconv.MESSAGING_CONSUMER_GROUP: service,
            semconv.NATS_DELIVERY_COUNT: attempt,
            semconv.CHOREO_WORKFLOW_ID: workflow_id,
        }
        promoted = {
            "subject": message.subject,
            "message_id": message.message_id,
            "workflow_id": workflow_id,
            "consumer_group": service,
            "link_trace_id": message.trace_id,
            "link_span_id": message.span_id,
        }
        receive_span_id = self._span_id()
        self._add(
            trace_id=trace_id,
            span_id=receive_span_id,
            parent_span_id=parent,
            name=semconv.span_name("receive", message.subject),
            kind="client",
            service=service,
            start=received,
            end=received,
            attributes={**common, semconv.MESSAGING_OPERATION_TYPE: semconv.OP_RECEIVE},
            operation=semconv.OP_RECEIVE,
            **promoted,
        )
        if hangs:
            return receive_span_id
        attributes = {**common, semconv.MESSAGING_OPERATION_TYPE: semconv.OP_PROCESS}
        if audit is not None:
            attributes[semconv.CHOREO_AUDIT_INPUT] = audit[0]
            attributes[semconv.CHOREO_AUDIT_OUTPUT] = audit[1]
        span_id = self._span_id()
        self._add(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            name=semconv.span_name("process", message.subject),
            kind="consumer",
            service=service,
            start=received,
            end=received + processing,
            attributes=attributes,
            operation=semconv.OP_PROCESS,
            status_code="error" if error else "ok",
            status_message=error,
            events=_exception_events(error, at=received + processing) if error else None,
            **promoted,
        )
        if settle is not None:
            self._add(
                trace_id=trace_id,
                span_id=self._span_id(),
                parent_span_id=span_id,
                name=semconv.span_name(settle, message.subject),
                kind="client",
                service=service,
                start=received + processing,
                end=received + processing,
                attributes={**common, semconv.MESSAGING_OPERATION_TYPE: semconv.OP_SETTLE},
                operation=semconv.OP_SETTLE,
                **promoted,
            )
        return span_id

    def _add(
        self,
        *,
        trace_id: str,
        span_id: str,
        parent_span_id: str | None,
        name: str,
        kind: str,
        service: str,
        start: dt.datetime,
        end: dt.datetime,
        attributes: dict[str, Any],
        operation: str,
        subject: str,
        message_id: str,
        workflow_id: str,
        status_code: str = "unset",
        status_message: str | None = None,
        events: str | None = None,
        consumer_group: str | None = None,
        link_trace_id: str | None = None,
        link_span_id: str | None = None,
    ) -> None:
        links = None
        if link_trace_id:
            links = json.dumps([{"trace_id": link_trace_id, "span_id": link_span_id}])
        self.rows.append(
            {
                "trace_id": trace_id,
                "span_id": span_id,
                "parent_span_id": parent_span_id,
                "name": name,
                "kind": kind,
                "service_name": service,
                "service_instance_id": f"{service}-1",
                "scope_name": "choreoscope.instrumentation",
                "start_time": start,
                "end_time": end,
                "duration_ms": (end - start).total_seconds() * 1000.0,
                "status_code": status_code,
                "status_message": status_message,
                "attributes": json.dumps(attributes),
                "resource": json.dumps({semconv.SERVICE_NAME: service}),
                "events": events,
                "links": links,
                "workflow_id": workflow_id,
                "subject": subject,
                "message_id": message_id,
                "operation": operation,
                "consumer_group": consumer_group,
                "link_trace_id": link_trace_id,
                "link_span_id": link_span_id,
                "received_at": end + dt.timedelta(milliseconds=50),
                "exporter_id": f"{service}-exporter",
                "ingest_flags": None,
            }
        )

    def table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rows, schema=SPANS)


def _exception_events(message: str, *, at: dt.datetime) -> str:
    return json.dumps(
        [
            {
                "name": "exception",
                "time_unix_nano": int(at.timestamp() * 1e9),
                "attributes": {"exception.type": "RuntimeError", "exception.message": message},
            }
        ]
    )


def heartbeat_rows(
    beats: list[tuple[str, dt.datetime, int]],
    *,
    interval_s: float = 60.0,
    received: int = 40,
    stopped: bool = False,
) -> pa.Table:
    """Heartbeats ``(service, at, spans_dropped)`` with plausible counters; ``stopped``:
    each is its instance's last, sent as it stopped on purpose."""
    rows = [
        {
            "service": service,
            "instance": f"{service}-1",
            "at": at,
            "received": received,
            "processed": received - 2,
            "failed": 2,
            "dead_lettered": 1,
            "spans_exported": 400,
            "spans_dropped": dropped,
            "in_flight": 0,
            "interval_s": interval_s,
            "stopped": stopped,
        }
        for service, at, dropped in beats
    ]
    return pa.Table.from_pylist(rows, schema=HEARTBEATS)


def consumer_lag_rows(samples: list[tuple[str, dt.datetime, int, int]]) -> pa.Table:
    """Samples ``(consumer, at, backlog, unacked)`` of consumers of ``CHOREO_EVENTS``."""
    rows = [
        {
            "at": at,
            "stream": "CHOREO_EVENTS",
            "consumer": consumer,
            "durable": True,
            "filter_subject": None,
            "num_pending": backlog,
            "num_ack_pending": unacked,
            "num_redelivered": 0,
            "num_waiting": 1,
            "delivered_stream_seq": 100,
            "ack_floor_stream_seq": 100 - unacked,
            "last_delivered_at": at - dt.timedelta(minutes=9),
        }
        for consumer, at, backlog, unacked in samples
    ]
    return pa.Table.from_pylist(rows, schema=CONSUMER_LAG)
