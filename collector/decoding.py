"""One entry point for every span payload: its ``Content-Type`` picks the decoder.

``decode_payloads`` never raises for bad input: a payload it cannot read at all
becomes one ``rejected`` row, and the good spans of a partly bad one are kept.
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
from collector.span_batch import MAX_ATTRIBUTE_CHARS, RAW_SPANS, Rejects, finalize
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


@dataclass(frozen=True)
class DecodedBatch:
    spans: pa.Table
    rejected: pa.Table
    received_spans: int = 0
    """Spans found in the input, stored or refused."""
    unreadable: int = 0
    """Payloads that could not be read at all (malformed, unsupported)."""

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
    rejects = Rejects(received_at=received_at or dt.datetime.now(dt.UTC))
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        decoded = [_decode_one(p, rejects=rejects) for p in payloads]
        unreadable = sum(1 for r in decoded if r is None)
        raws = [r for r in decoded if r is not None and r.num_rows]
        if not raws:
            return DecodedBatch(SPANS.empty_table(), rejects.table(), 0, unreadable)
        raw = raws[0] if len(raws) == 1 else pa.concat_tables(raws)
        spans = finalize(raw, rejects=rejects, max_attribute_chars=max_attribute_chars)
        return DecodedBatch(spans, rejects.table(), raw.num_rows, unreadable)
    finally:
        if was_enabled:
            gc.enable()


def _decode_one(payload: Payload, *, rejects: Rejects) -> pa.Table | None:
    kind = media_type(payload.content_type)
    decoder = _DECODERS.get(kind)
    rejects.source = payload.source
    if decoder is None:
        rejects.add(
            reason=f"unsupported Content-Type {payload.content_type!r}: send OTLP protobuf, "
            f"OTLP JSON or {wire.CONTENT_TYPE_COLUMNAR}",
            raw=payload.data,
        )
        return None
    try:
        raw = decoder(payload.data, rejects=rejects)
    except MalformedBatch as e:
        rejects.add(reason=f"malformed {kind} payload: {e}", raw=payload.data)
        return None
    n = raw.num_rows
    for column, value in (
        ("exporter_id", payload.exporter_id),
        ("exporter_batch_seq", payload.batch_seq),
        ("exporter_spans_dropped", payload.spans_dropped),
        ("source", payload.source),
    ):
        kind = RAW_SPANS.field(column).type
        raw = raw.set_column(
            RAW_SPANS.get_field_index(column), column, pa.repeat(pa.scalar(value, kind), n)
        )
    return raw
