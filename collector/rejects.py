"""Rows for the ``rejected`` table, gathered while decoding, a bounded number per message.

A problem of a whole input message (unreadable, an unusable header, non-UTF-8 text)
is one row, with the message as ``raw``. A problem of one span (refused: bad ids,
unusable times, a value of the wrong type; or stored repaired: attribute values
truncated) is one row per span, with the span as ``raw``, for the first
``MAX_SPAN_ROWS_PER_MESSAGE`` spans of a message. The others of that message are only
counted, per reason, into one summary row whose ``raw`` is the message itself
(capped at ``RAW_CAP_BYTES``, as every raw): one buggy exporter or hostile client
cannot turn a 1 MB message of empty spans into 500,000 rows and gigabytes of store.

The rows a message gets depend on its bytes alone (never on which other messages
were decoded with it), so a message redelivered after a crash writes the same rows
again, which the ``rejected`` view lists once.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa

from store.schema import RAW_CAP_BYTES, REJECTED

MAX_SPAN_ROWS_PER_MESSAGE: Final = 100
"""Spans of one message listed one row each in ``rejected``; the rest are counted.

A broken exporter breaks its spans in one or two ways, so 100 examples show every
way and leave plenty to compare, while the worst message (1 MB of empty OTLP spans,
~500,000 of them) writes 101 rows of at most a few hundred KB instead of 500,000."""


@dataclass
class _Message:
    """One input message being decoded, and the span-level rejects it had."""

    source: str
    stream_seq: int | None
    data: bytes
    listed: int = 0
    unlisted: Counter[str] = field(default_factory=Counter)
    repaired: set[str] = field(default_factory=set)
    """The ``unlisted`` reasons whose spans were stored repaired, not refused."""


@dataclass
class Rejects:
    """Rows for the ``rejected`` table, gathered while decoding."""

    received_at: dt.datetime
    source: str = ""
    stream_seq: int | None = None  # of the JetStream message being decoded, if any
    rows: list[dict[str, Any]] = field(default_factory=list)
    unread_spans: int = 0
    """Spans a decoder refused before they became rows (one of an unexpected shape)."""
    max_span_rows: int = MAX_SPAN_ROWS_PER_MESSAGE
    _messages: list[_Message] = field(default_factory=list, repr=False)

    def begin_message(self, data: bytes, *, source: str, stream_seq: int | None) -> int:
        """Start on one input message; returns its index, for ``keeps_span(message=)``.
        Rows added from now on come from it, unless told another ``message``."""
        self.source, self.stream_seq = source, stream_seq
        self._messages.append(_Message(source, stream_seq, data))
        return len(self._messages) - 1

    def add(
        self,
        *,
        reason: str,
        raw: bytes | str,
        size: int | None = None,
        source: str | None = None,
        stream_seq: int | None = None,
        message: int | None = None,
    ) -> None:
        """One row. A span's row is added only if ``keeps_span`` said so."""
        if message is not None:
            source, stream_seq = self._messages[message].source, self._messages[message].stream_seq
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
        self.rows.append(
            {
                "received_at": self.received_at,
                "source": self.source if source is None else source,
                "reason": reason,
                "size": len(data) if size is None else size,
                "raw": data[:RAW_CAP_BYTES],
                "stream_seq": self.stream_seq if stream_seq is None else stream_seq,
            }
        )

    def keeps_span(self, *, reason: str, message: int | None = None, stored: bool = False) -> bool:
        """Whether one more span-level reject of ``message`` (default: the current one)
        gets a row of its own: then ``add`` it. Past ``max_span_rows`` of the message it
        does not, and is counted under ``reason`` (a text without the span's own values,
        so that alike spans add up) in the message's summary row. ``stored``: the span
        was stored repaired, not refused."""
        if not self._messages:  # no message begun (a caller outside decoding): no cap
            return True
        current = self._messages[-1 if message is None else message]
        if current.listed < self.max_span_rows:
            current.listed += 1
            return True
        current.unlisted[reason] += 1
        if stored:
            current.repaired.add(reason)
        return False

    def rollback(self, *, to: int) -> None:
        """Forget the rows added since there were ``to``, and the current message's
        span counts: its payload is rejected whole, with no partial notes."""
        del self.rows[to:]
        if self._messages:
            current = self._messages[-1]
            current.listed = 0
            current.unlisted.clear()
            current.repaired.clear()

    def summaries(self) -> list[dict[str, Any]]:
        """One row per message that had more span-level rejects than it lists."""
        rows = []
        for message in self._messages:
            if not message.unlisted:
                continue
            rows.append(
                {
                    "received_at": self.received_at,
                    "source": message.source,
                    "reason": _summary(message, listed=self.max_span_rows),
                    "size": len(message.data),
                    "raw": message.data[:RAW_CAP_BYTES],
                    "stream_seq": message.stream_seq,
                }
            )
        return rows

    def summarized(self) -> tuple[str, ...]:
        """For the collector's log, per message with a summary row: where it came from
        and the summary."""
        return tuple(
            f"{row['source']}, stream sequence {row['stream_seq']}: {row['reason']}"
            if row["stream_seq"] is not None
            else f"{row['source']}: {row['reason']}"
            for row in self.summaries()
        )

    def table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rows + self.summaries(), schema=REJECTED)


def _summary(message: _Message, *, listed: int) -> str:
    counts = sorted(message.unlisted.items(), key=lambda item: (-item[1], item[0]))
    what = "refused or stored repaired" if message.repaired else "refused"
    return (
        f"and {message.unlisted.total():,} more spans of this message {what}: "
        f"{'; '.join(f'{n:,} × {reason}' for reason, n in counts)}. The first {listed} "
        f"have a row each, with the span; this row's raw is the message (its first "
        f"{RAW_CAP_BYTES:,} bytes): its exporter needs fixing"
    )
