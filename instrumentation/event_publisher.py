"""How an Agent puts an event on the bus: a PRODUCER span, the wire headers, and
JetStream's ack (so an emitted event is stored before the handler's message is
acked), or, for an Agent on core NATS, a plain publish that nobody acknowledges.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import nats.errors
from opentelemetry.context import Context
from opentelemetry.trace import Span

from instrumentation import semconv, wire
from instrumentation.acked_publisher import AckedPublisher, Stored
from instrumentation.agent_streams import stream_capturing
from instrumentation.audit import AuditCapture
from instrumentation.errors import (
    EventDataError,
    NoStreamCapturesError,
    PayloadTooLargeError,
    PublishError,
)
from instrumentation.ids import new_id
from instrumentation.messaging_spans import MessagingSpans
from instrumentation.propagation import header_value
from instrumentation.publish_checks import check_publish_subject
from instrumentation.traced_message import current_workflow_id

log = logging.getLogger(__name__)

_ROOT = Context()  # start_workflow begins a new trace
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_data(data: Any) -> bytes:
    """bytes as they are, str as UTF-8, anything else as JSON."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    return _dumps(data).encode("utf-8")


class EventPublisher:
    def __init__(
        self,
        *,
        spans: MessagingSpans,
        audit: AuditCapture,
        ack_timeout: float,
        ensure_subject: Callable[[str], Any],
        wait_for_ack: bool = True,
    ) -> None:
        self._spans = spans
        self._audit = audit
        self._ack_timeout = ack_timeout
        self._ensure_subject = ensure_subject
        self._wait_for_ack = wait_for_ack
        self.nc: Any = None  # set when the Agent connects
        self.acked: AckedPublisher | None = None  # set when the Agent connects, if it waits

    async def publish(
        self,
        subject: str,
        data: Any,
        *,
        workflow_id: str,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        root: bool = False,
        audit_on: Span | None = None,
    ) -> str:
        """Publish (and wait for JetStream's ack unless on core NATS); returns the message
        id. Raises ``PublishError``, or ``ConfigurationError`` for a wildcard subject."""
        check_publish_subject(subject)
        try:
            payload = encode_data(data)
        except (TypeError, ValueError) as e:  # not JSON: a datetime, a set, a cycle
            raise EventDataError(subject=subject, reason=str(e)) from e
        # an id the caller put in the headers is kept (JetStream dedupes on it)
        if not message_id:
            message_id = (header_value(headers, wire.MSG_ID) if headers else None) or new_id()
        span = self._spans.start_publish(
            subject,
            message_id=message_id,
            workflow_id=workflow_id,
            body_size=len(payload),
            context=_ROOT if root else None,
        )
        if self._audit.enabled:
            rendered = self._audit.render(subject, data)
            span.set_attribute(semconv.CHOREO_AUDIT_OUTPUT, rendered)
            if audit_on is not None:
                audit_on.add_event(
                    semconv.CHOREO_AUDIT_OUTPUT,
                    {semconv.CHOREO_AUDIT_SUBJECT: subject, semconv.CHOREO_AUDIT_OUTPUT: rendered},
                )
        out = self._spans.publish_headers(
            span, message_id=message_id, workflow_id=workflow_id, headers=headers
        )
        try:
            if self._wait_for_ack:
                stored = await self._publish_acked(subject, payload, out)
            else:  # core NATS, sent from here: one coroutine less per event
                stored = None
                nc = self.nc
                if nc is None:
                    raise ConnectionError("the agent is not connected to NATS")
                await nc.publish(subject, payload, headers=out)
        except PublishError as exc:
            self._spans.end_with_error(span, exc)
            raise
        except nats.errors.MaxPayloadError as exc:
            self._spans.end_with_error(span, exc)
            limit = self.nc.max_payload if self.nc is not None else 0
            raise PayloadTooLargeError(subject=subject, size=len(payload), limit=limit) from exc
        except Exception as exc:
            self._spans.end_with_error(span, exc)
            raise PublishError(subject=subject, reason=f"{type(exc).__name__}: {exc}") from exc
        if stored is not None:
            span.set_attribute(semconv.NATS_STREAM, stored.stream)
            span.set_attribute(semconv.NATS_STREAM_SEQUENCE, stored.seq)
            if stored.duplicate:
                span.set_attribute(semconv.NATS_DUPLICATE, True)
        self._spans.end(span)
        return message_id

    async def publish_raw(
        self, subject: str, payload: bytes, *, headers: dict[str, str], parent: Context
    ) -> None:
        """Publish ``payload`` with ``headers`` exactly as given (a dead letter keeps the
        original trace context), in a PRODUCER span child of ``parent``."""
        message_id = header_value(headers, wire.MSG_ID) or new_id()
        span = self._spans.start_publish(
            subject,
            message_id=message_id,
            workflow_id=current_workflow_id.get(),
            body_size=len(payload),
            context=parent,
        )
        try:
            stored = await self._send(subject, payload, headers)
        except PublishError as exc:
            self._spans.end_with_error(span, exc)
            raise
        except Exception as exc:
            self._spans.end_with_error(span, exc)
            raise PublishError(subject=subject, reason=f"{type(exc).__name__}: {exc}") from exc
        if stored is not None:
            span.set_attribute(semconv.NATS_STREAM, stored.stream)
            span.set_attribute(semconv.NATS_STREAM_SEQUENCE, stored.seq)
        self._spans.end(span)

    async def _send(self, subject: str, payload: bytes, headers: dict[str, str]) -> Stored | None:
        """Where JetStream stored the message, or None for a core NATS publish."""
        if self._wait_for_ack:
            return await self._publish_acked(subject, payload, headers)
        if self.nc is None:
            raise ConnectionError("the agent is not connected to NATS")
        await self.nc.publish(subject, payload, headers=headers)
        return None

    async def _publish_acked(self, subject: str, payload: bytes, headers: dict[str, str]) -> Stored:
        if self.acked is None:
            raise ConnectionError("the agent is not connected to NATS")
        try:
            return await self.acked.publish(
                subject, payload, headers=headers, timeout=self._ack_timeout
            )
        except nats.errors.NoRespondersError:
            pass  # no stream captures the subject yet: add it to the Agent's stream, once
        except TimeoutError:
            # a core NATS subscriber on the subject (`nats sub '>'`) is a responder that
            # sends no ack: the publish met it instead of "no responders", and waited
            if not await self._captured_by_no_stream(subject):
                raise  # a stream captures it, and did not ack in time
            log.warning(
                "no JetStream stream captured %r: a core NATS subscriber on it received the "
                "publish, which is not a stream and sends no ack; adding the subject to the "
                "Agent's stream and publishing again",
                subject,
            )
        await self._ensure_subject(subject)
        try:
            return await self.acked.publish(
                subject, payload, headers=headers, timeout=self._ack_timeout
            )
        except TimeoutError as exc:
            if await self._captured_by_no_stream(subject):
                raise NoStreamCapturesError(subject=subject) from exc
            raise

    async def _captured_by_no_stream(self, subject: str) -> bool:
        """Whether JetStream says no stream captures ``subject`` (False when it cannot
        say: a publish that timed out while NATS was away is not about streams)."""
        try:
            return await stream_capturing(self.nc.jetstream(), subject) is None
        except Exception:
            log.debug("could not ask JetStream which stream captures %r", subject, exc_info=True)
            return False
