"""What an Agent handler receives: the event, where it is in its workflow, and ``emit``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span

from instrumentation.event_publisher import EventPublisher


class Event:
    """One delivered event.

    ``data`` is the decoded body (JSON by default), ``raw`` the bytes; ``attempt``
    is JetStream's delivery count (1 on the first delivery; always 1 on core NATS).
    ``emit`` publishes a follow-up event in the same workflow, as a child of this
    step's span.
    """

    __slots__ = (
        "_process_span",
        "_publisher",
        "attempt",
        "data",
        "headers",
        "message_id",
        "raw",
        "subject",
        "workflow_id",
    )

    def __init__(
        self,
        *,
        subject: str,
        data: Any,
        raw: bytes,
        headers: Mapping[str, str],
        workflow_id: str,
        message_id: str | None,
        attempt: int,
        publisher: EventPublisher,
        process_span: Span,
    ) -> None:
        self.subject = subject
        self.data = data
        self.raw = raw
        self.headers = headers
        self.workflow_id = workflow_id
        self.message_id = message_id
        self.attempt = attempt
        self._publisher = publisher
        self._process_span = process_span

    async def emit(
        self,
        subject: str,
        data: Any,
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Publish ``data`` on ``subject`` in this workflow; returns its message id.

        On a JetStream Agent it waits for the ack and raises ``PublishError`` if the
        event was not stored (the handler then fails and its message is redelivered).
        On core NATS it returns once the client has the event to send.
        """
        return await self._publisher.publish(
            subject,
            data,
            workflow_id=self.workflow_id,
            message_id=message_id,
            headers=headers,
            audit_on=self._process_span,
        )

    def __repr__(self) -> str:
        return (
            f"Event(subject={self.subject!r}, workflow_id={self.workflow_id!r}, "
            f"message_id={self.message_id!r}, attempt={self.attempt})"
        )
