"""The JetStream streams and consumers an ``Agent`` needs, created when missing.

Business events go to one stream (``CHOREO_EVENTS`` unless the Agent is given
``stream=``). An Agent makes sure that stream captures the subjects it handles
and publishes: missing subjects are added as ``<first token>.>`` (or exactly the
Agent's ``stream_subjects=``). Dead letters go to ``CHOREO_DEAD_LETTERS``
(``dlq.>``). Each handler gets a durable pull consumer per queue group, so the
instances of one service share the work and redeliveries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

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
from instrumentation.errors import ConfigurationError
from instrumentation.spans_stream import STREAM_EXISTS
from instrumentation.wire import subject_matches

log = logging.getLogger(__name__)

_SUBJECTS_OVERLAP = 10065


def default_stream_subject(subject: str) -> str:
    """``recruit.cv.parsed`` → ``recruit.>``."""
    return subject.split(".", 1)[0] + ".>"


async def ensure_stream_covers(
    js: Any, *, stream: str, subjects: Iterable[str], exact: Sequence[str] | None = None
) -> None:
    """Create ``stream`` if missing, or add the ``subjects`` it does not capture yet."""
    wanted = list(exact) if exact else sorted({default_stream_subject(s) for s in subjects})
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        config = StreamConfig(
            name=stream,
            subjects=wanted,
            storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS,
            description="business events of choreoscope agents",
        )
        try:
            await js.add_stream(config)
            # two agents starting together may both get here (JetStream accepts the same
            # config twice), so this says what holds, not who created it
            log.info("JetStream stream %s is ready for %s", stream, ", ".join(wanted))
            return
        except BadRequestError as exc:
            if exc.err_code == _SUBJECTS_OVERLAP:
                await _explain_overlap(js, stream, list(subjects))
            if exc.err_code != STREAM_EXISTS:
                raise
            info = await js.stream_info(stream)
    have = list(info.config.subjects or [])
    needed = [s for s in subjects if not any(subject_matches(p, s) for p in have)]
    missing = [w for w in wanted if w not in have and any(subject_matches(w, s) for s in needed)]
    if not missing:
        return
    info.config.subjects = have + missing
    try:
        await js.update_stream(info.config)
    except BadRequestError as exc:
        if exc.err_code == _SUBJECTS_OVERLAP:
            await _explain_overlap(js, stream, needed)
        raise
    log.info("stream %s now also captures %s", stream, ", ".join(missing))


async def stream_capturing(js: Any, subject: str) -> str | None:
    """The name of the stream that captures ``subject``, or None when none does."""
    try:
        return await js.find_stream_name_by_subject(subject)
    except NotFoundError:
        return None


async def _explain_overlap(js: Any, stream: str, subjects: Sequence[str]) -> None:
    """Another stream already captures one of ``subjects``: say which, and what to pass."""
    for subject in subjects:
        try:
            other = await js.find_stream_name_by_subject(subject)
        except NotFoundError:
            continue
        if other != stream:
            raise ConfigurationError(
                setting="stream",
                value=stream,
                fix=f"{subject!r} is already captured by the JetStream stream {other!r}; "
                f"give the Agent stream={other!r} (or stream_subjects= that do not overlap)",
            )


async def ensure_dead_letter_stream(js: Any) -> None:
    try:
        await js.stream_info(wire.DEAD_LETTER_STREAM)
        return
    except NotFoundError:
        pass
    try:
        await js.add_stream(
            StreamConfig(
                name=wire.DEAD_LETTER_STREAM,
                subjects=[wire.DEAD_LETTER_SUBJECTS],
                storage=StorageType.FILE,
                retention=RetentionPolicy.LIMITS,
                description="messages choreoscope agents gave up on, with the reason",
            )
        )
    except BadRequestError as exc:
        if exc.err_code != STREAM_EXISTS:
            raise


def consumer_config(
    *,
    durable: str,
    subject: str,
    ack_wait: float,
    max_deliveries: int,
    max_ack_pending: int,
) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=durable,
        filter_subject=subject,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait,
        max_deliver=max_deliveries,
        max_ack_pending=max_ack_pending,
    )


async def ensure_consumer(
    js: Any,
    *,
    stream: str,
    durable: str,
    subject: str,
    ack_wait: float,
    max_deliveries: int,
    max_ack_pending: int,
) -> None:
    """Create (or update) the durable pull consumer of one handler's queue group."""
    config = consumer_config(
        durable=durable,
        subject=subject,
        ack_wait=ack_wait,
        max_deliveries=max_deliveries,
        max_ack_pending=max_ack_pending,
    )
    try:
        await js.add_consumer(stream, config)
    except BadRequestError as exc:
        log.warning(
            "consumer %s on %s exists with another configuration (%s); using it as it is",
            durable,
            stream,
            exc.description,
        )
