"""Span batches as NATS messages no larger than the server takes: a batch whose
encoding exceeds the server's max payload is halved until its parts fit; a single
span that does not fit, or spans that cannot be encoded, are given up on (counted
as dropped by the caller)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan

log = logging.getLogger(__name__)

HEADROOM = 4096  # bytes left for the message's headers


def encode_within_limit(
    spans: list[ReadableSpan],
    *,
    encode: Callable[[Sequence[ReadableSpan]], bytes],
    limit: int,
    unsendable: Callable[[int], None],
) -> list[tuple[bytes, int]]:
    """Each part's payload and span count; ``unsendable(n)`` for spans given up on."""
    out: list[tuple[bytes, int]] = []
    pending = [spans]
    while pending:
        part = pending.pop()
        try:
            payload = encode(part)
        except Exception:
            log.exception("could not encode %d spans for export; dropped", len(part))
            unsendable(len(part))
            continue
        if len(payload) <= limit - HEADROOM:
            out.append((payload, len(part)))
        elif len(part) > 1:
            middle = len(part) // 2
            pending.extend([part[middle:], part[:middle]])
        else:
            log.warning("span %s is larger than NATS max payload; dropped", part[0].name)
            unsendable(1)
    return out
