"""Attribute keys: the OpenTelemetry messaging semantic conventions (v1.44+) and ours.

Every span attribute the project writes or reads comes from here.
"""

from __future__ import annotations

from typing import Final

MESSAGING_SYSTEM: Final = "messaging.system"
MESSAGING_SYSTEM_NATS: Final = "nats"
MESSAGING_DESTINATION_NAME: Final = "messaging.destination.name"
MESSAGING_OPERATION_TYPE: Final = "messaging.operation.type"
MESSAGING_OPERATION_NAME: Final = "messaging.operation.name"
MESSAGING_MESSAGE_ID: Final = "messaging.message.id"
MESSAGING_CONVERSATION_ID: Final = "messaging.message.conversation_id"
MESSAGING_BODY_SIZE: Final = "messaging.message.body.size"
MESSAGING_CONSUMER_GROUP: Final = "messaging.consumer.group.name"
MESSAGING_BATCH_COUNT: Final = "messaging.batch.message_count"
NATS_STREAM: Final = "messaging.nats.stream"
NATS_STREAM_SEQUENCE: Final = "messaging.nats.stream.sequence"
NATS_DELIVERY_COUNT: Final = "messaging.nats.delivery_count"
NATS_DUPLICATE: Final = "messaging.nats.duplicate"

# messaging.operation.type values
OP_SEND: Final = "send"
OP_RECEIVE: Final = "receive"
OP_PROCESS: Final = "process"
OP_SETTLE: Final = "settle"

# ours
CHOREO_WORKFLOW_ID: Final = "choreo.workflow.id"
CHOREO_CONTEXT_BROKEN: Final = "choreo.context.broken"
CHOREO_DEAD_LETTER_REASON: Final = "choreo.dead_letter.reason"
CHOREO_AUDIT_INPUT: Final = "choreo.audit.input"
CHOREO_AUDIT_OUTPUT: Final = "choreo.audit.output"
CHOREO_AUDIT_SUBJECT: Final = "choreo.audit.subject"  # on the audit.output span event
CHOREO_DEAD_LETTERED: Final = "choreo.dead_lettered"  # true on a process span that gave up
CHOREO_HANDLER: Final = "choreo.handler"  # the handler function's qualified name
# on a nak settle span: the delay asked before JetStream redelivers, in milliseconds
CHOREO_NAK_DELAY_MS: Final = "choreo.nak.delay_ms"
# on a JetStream process span: the in_progress acks sent while its handler ran
CHOREO_KEEP_ALIVE_COUNT: Final = "choreo.keep_alive.count"

SERVICE_NAME: Final = "service.name"
SERVICE_INSTANCE_ID: Final = "service.instance.id"
SERVICE_VERSION: Final = "service.version"


def span_name(operation: str, subject: str) -> str:
    """`{messaging.operation.name} {destination}`, e.g. ``publish recruit.cv.parsed``."""
    return f"{operation} {subject}"
