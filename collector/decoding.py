"""One entry point for every span payload: its ``Content-Type`` picks the decoder.

``decode_payloads`` never raises for bad input: a payload it cannot read at all
becomes one ``rejected`` row, and the good spans of a partly bad one are kept.
Whatever a decoder raises on one payload (a ``KeyError`` on an unexpected shape,
a ``RecursionError`` on deep nesting, ...) only rejects that payload; the others
of the call are stored as usual. Catching is per payload, never per span.
It is a plain top-level function of plain arguments so that a process pool can
run it (``decode_pool``); many payloads per call amortize Arrow's per-call cost.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from collector.columnar_decoder import MalformedBatch, decode_columnar
from collector.otlp_json_decoder import decode_otlp_json
from collector.otlp_protobuf_decoder import decode_otlp_protobuf
from collector.rejects import Rejects
from collector.span_batch import MAX_ATTRIBUTE_CHARS, RAW_SPANS, finalize, fits_int64
from instrumentation import wire
from store.schema import SPANS

_DECODERS = {
    wire.CONTENT_TYPE_COLUMNAR: decode_columnar,
    wire.CONTENT_TYPE_OTLP_PROTOBUF: decode_otlp_protobuf,
    "application/protobuf": decode_otlp_protobuf,
    wire.CONTENT_TYPE_OTLP_JSON: decode_otlp_json,
}


@dataclass(frozen=True)
class Payload:
    """One span payload as received: bytes, format, and where it came from."""

    data: bytes
    content_type: str | None
    source: str
    exporter_id: str | None = None
    batch_seq: int | None = None
    spans_dropped: int | None = None
    bad_headers: tuple[tuple[str, str, str], ...] = ()
    """(name, value, what is wrong with it) of headers left out as unusable; each is
    recorded in ``rejected``."""
    stream_seq: int | None = None
    """The JetStream message's stream sequence (None over HTTP): its rejects carry it."""


@dataclass(frozen=True)
class DecodedBatch:
    spans: pa.Table
    rejected: pa.Table
    received_spans: int = 0
    """Spans found in the input, stored or refused."""
    unreadable: int = 0
    """Payloads that could not be read at all (malformed, unsupported)."""
    summarized: tuple[str, ...] = ()
    """Per payload with more span rejects than ``rejected`` lists one by one: where it
    came from and its summary row's reason (``Rejects.summarized``)."""

    @property
    def span_count(self) -> int:
        return self.spans.num_rows

    @property
    def reject_count(self) -> int:
        return self.rejected.num_rows


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` → ``application/json``; none means OTLP protobuf."""
    if not content_type:
        return wire.CONTENT_TYPE_OTLP_PROTOBUF
    return content_type.split(";", 1)[0].strip().lower()


def is_supported(content_type: str | None) -> bool:
    return media_type(content_type) in _DECODERS


def decode_payloads(
    payloads: Sequence[Payload],
    *,
    received_at: dt.datetime | None = None,
    max_attribute_chars: int = MAX_ATTRIBUTE_CHARS,
) -> DecodedBatch:
    """Spans and rejected rows of many payloads, validated together, GC paused."""
    received_at = received_at or dt.datetime.now(dt.UTC)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        try:
            return _decode_together(
                payloads, received_at=received_at, max_attribute_chars=max_attribute_chars
            )
        except Exception as e:
            if len(payloads) == 1:
                return _unreadable(payloads[0], e, received_at=received_at)
        # validating them together failed on something no decoder caught: each
        # payload alone, so only the one at fault is rejected
        parts = [
            decode_payloads([p], received_at=received_at, max_attribute_chars=max_attribute_chars)
            for p in payloads
        ]
        return DecodedBatch(
            pa.concat_tables([d.spans for d in parts]),
            pa.concat_tables([d.rejected for d in parts]),
            sum(d.received_spans for d in parts),
            sum(d.unreadable for d in parts),
            tuple(s for d in parts for s in d.summarized),
        )
    finally:
        if was_enabled:
            gc.enable()


def _decode_together(
    payloads: Sequence[Payload], *, received_at: dt.datetime, max_attribute_chars: int
) -> DecodedBatch:
    rejects = Rejects(received_at=received_at)
    decoded = [_decode_one(p, rejects=rejects) for p in payloads]
    unreadable = sum(1 for r in decoded if r is None)
    raws = [r for r in decoded if r is not None and r.num_rows]
    if raws:
        raw = raws[0] if len(raws) == 1 else pa.concat_tables(raws)
        spans = finalize(raw, rejects=rejects, max_attribute_chars=max_attribute_chars)
    else:
        raw, spans = RAW_SPANS.empty_table(), SPANS.empty_table()
    return DecodedBatch(
        spans,
        rejects.table(),
        raw.num_rows + rejects.unread_spans,
        unreadable,
        rejects.summarized(),
    )


def _unreadable(payload: Payload, error: Exception, *, received_at: dt.datetime) -> DecodedBatch:
    rejects = Rejects(received_at=received_at, source=payload.source, stream_seq=payload.stream_seq)
    rejects.add(
        reason=f"unreadable {media_type(payload.content_type)} payload: {_failure(error)}",
        raw=payload.data,
    )
    return DecodedBatch(SPANS.empty_table(), rejects.table(), 0, 1)


def _decode_one(payload: Payload, *, rejects: Rejects) -> pa.Table | None:
    kind = media_type(payload.content_type)
    decoder = _DECODERS.get(kind)
    message = rejects.begin_message(
        payload.data, source=payload.source, stream_seq=payload.stream_seq
    )
    for name, value, problem in payload.bad_headers:
        rejects.add(
            reason=f"header {name} {value[:40]!r} {problem}; the spans are stored without it",
            raw=f"{name}: {value}",
        )
    if decoder is None:
        rejects.add(
            reason=f"unsupported Content-Type {payload.content_type!r}: send OTLP protobuf, "
            f"OTLP JSON or {wire.CONTENT_TYPE_COLUMNAR}",
            raw=payload.data,
        )
        return None
    held = len(rejects.rows)
    try:
        raw = decoder(payload.data, rejects=rejects)
        n = raw.num_rows
        for column, value in (
            ("exporter_id", payload.exporter_id),
            ("exporter_batch_seq", _int64_or_none(payload.batch_seq)),
            ("exporter_spans_dropped", _int64_or_none(payload.spans_dropped)),
            ("source", payload.source),
            ("stream_seq", payload.stream_seq),
            ("message", message),
        ):
            arrow_type = RAW_SPANS.field(column).type
            raw = raw.set_column(
                RAW_SPANS.get_field_index(column),
                column,
                pa.repeat(pa.scalar(value, arrow_type), n),
            )
    except MalformedBatch as e:
        rejects.rollback(to=held)  # the payload is rejected whole: no partial notes
        rejects.add(reason=f"malformed {kind} payload: {e}", raw=payload.data)
        return None
    except Exception as e:  # a decoder bug must cost one payload, not the collector
        rejects.rollback(to=held)
        rejects.add(reason=f"unreadable {kind} payload: {_failure(e)}", raw=payload.data)
        return None
    return raw


def _int64_or_none(value: int | None) -> int | None:
    return value if value is None or fits_int64(value) else None


def _failure(e: BaseException) -> str:
    text = str(e)
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__
