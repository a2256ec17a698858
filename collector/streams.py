"""The JetStream streams and durable consumers the collector reads.

``CHOREO_SPANS`` is shared with the exporters, which also create it when it is
missing: whoever comes first creates it, and nobody fails because it exists.
``CHOREO_SIGNALS`` keeps heartbeats and the advisories the collector turns into
``bus_events`` while no collector runs, so none is lost across a restart.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Final

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError

from instrumentation import wire
from instrumentation.errors import ChoreoscopeError

log = logging.getLogger(__name__)

SIGNALS_STREAM: Final = "CHOREO_SIGNALS"
ADVISORY_SUBJECTS: Final = (
    f"{wire.ADVISORY_MAX_DELIVERIES}.>",
    f"{wire.ADVISORY_TERMINATED}.>",
    f"{wire.ADVISORY_NAKED}.>",
)
SIGNAL_SUBJECTS: Final = (wire.HEARTBEAT_SUBJECTS, *ADVISORY_SUBJECTS)
SPANS_DURABLE: Final = "choreoscope-collector"
SIGNALS_DURABLE: Final = "choreoscope-collector-signals"
_STREAM_NAME_IN_USE: Final = 10058
_SUBJECTS_OVERLAP: Final = 10065


class SubjectsTakenError(ChoreoscopeError):
    """Another stream already captures some of these subjects."""


async def ensure_stream(
    js: JetStreamContext,
    *,
    name: str,
    subjects: tuple[str, ...] | list[str],
    replicas: int,
    max_age: float,
    max_bytes: int,
) -> bool:
    """Create the stream (file storage, limits retention) unless it already exists;
    True if this call created it."""
    try:
        await js.stream_info(name)
        return False
    except NotFoundError:
        pass
    config = StreamConfig(
        name=name,
        subjects=list(subjects),
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        max_age=max_age,
        max_bytes=max_bytes,
        num_replicas=replicas,
        duplicate_window=min(120.0, max_age),
    )
    try:
        await js.add_stream(config)
        log.info(
            "created stream %s (subjects %s, %d replica(s), max age %ss, max %d bytes)",
            name, ", ".join(subjects), replicas, max_age, max_bytes,
        )  # fmt: skip
        return True
    except BadRequestError as e:
        if e.err_code == _STREAM_NAME_IN_USE:
            return False  # an exporter or another collector created it meanwhile
        if e.err_code == _SUBJECTS_OVERLAP:
            raise SubjectsTakenError(str(e)) from e
        raise


def consumer_config(*, durable: str, ack_wait: float, max_ack_pending: int) -> ConsumerConfig:
    """A durable pull consumer any number of collectors share (scale-out)."""
    return ConsumerConfig(
        durable_name=durable,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=-1,  # spans are never given up on: decoding never fails a message
        max_ack_pending=max_ack_pending,
        max_waiting=512,
    )


def stream_seq(msg: Any) -> int | None:
    """The JetStream stream sequence of ``msg`` (None for a core NATS message)."""
    try:
        return int(msg.metadata.sequence.stream)
    except (nats.errors.Error, AttributeError, TypeError, ValueError):
        return None


def stored_at(msg: Any) -> dt.datetime | None:
    """When JetStream stored ``msg`` (None for a core NATS message): the same on every
    delivery of it, unlike the time it was received."""
    try:
        when = msg.metadata.timestamp
    except (nats.errors.Error, AttributeError, TypeError, ValueError):
        return None
    if not isinstance(when, dt.datetime):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
