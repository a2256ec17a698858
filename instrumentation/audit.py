"""Audit capture: what each step was given and what it decided, on its spans.

Off by default. When on, a step's input event is recorded on its process span
(``choreo.audit.input``) and each event it emits on the publish span
(``choreo.audit.output``) and as an event of the process span. Every value first
goes through the redaction hook, then is capped at ``max_bytes``. A hook that
fails records a placeholder, never the unredacted data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Redactor = Callable[[str, Any], Any]
"""``redact(subject, data) -> data to record`` (return a copy; do not mutate ``data``)."""

TRUNCATED_MARK = "…[truncated]"


class AuditCapture:
    def __init__(
        self, *, enabled: bool = False, max_bytes: int = 4096, redact: Redactor | None = None
    ) -> None:
        self.enabled = enabled
        self.max_bytes = max_bytes
        self.redact = redact

    def render(self, subject: str, data: Any) -> str:
        """``data`` redacted, as JSON text of at most ``max_bytes`` UTF-8 bytes."""
        try:
            value = self.redact(subject, data) if self.redact is not None else data
        except Exception as exc:
            log.warning("audit redaction hook failed on %s: %s", subject, exc)
            return f"[redaction failed: {type(exc).__name__}]"
        if isinstance(value, (bytes, bytearray)):
            text = bytes(value).decode("utf-8", "replace")
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
        encoded = text.encode("utf-8")
        if len(encoded) <= self.max_bytes:
            return text
        mark = TRUNCATED_MARK.encode("utf-8")
        keep = max(self.max_bytes - len(mark), 0)
        return encoded[:keep].decode("utf-8", "ignore") + TRUNCATED_MARK
