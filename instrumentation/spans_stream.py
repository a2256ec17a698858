"""``CHOREO_SPANS``, the JetStream stream span exporters publish to: created by the
first exporter that finds it missing, bounded in age and size (``wire``)."""

from __future__ import annotations

import logging
from typing import Any

from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from instrumentation import wire

log = logging.getLogger(__name__)

STREAM_EXISTS = 10058  # JetStream's error code: another client made the stream first


async def ensure_spans_stream(js: Any) -> None:
    """Create ``CHOREO_SPANS`` if it is missing; an existing stream is left as it is."""
    try:
        await js.stream_info(wire.SPANS_STREAM)
        return
    except NotFoundError:
        pass
    config = StreamConfig(
        name=wire.SPANS_STREAM,
        subjects=[wire.SPANS_SUBJECTS],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        max_age=wire.SPANS_STREAM_MAX_AGE_S,
        max_bytes=wire.SPANS_STREAM_MAX_BYTES,
    )
    try:
        await js.add_stream(config)
        log.info("JetStream stream %s is ready", wire.SPANS_STREAM)  # maybe made by another
    except BadRequestError as exc:
        if exc.err_code != STREAM_EXISTS:
            raise
