"""From decoded span columns to rows of the ``spans`` table, with validation.

Every decoder (columnar msgpack, OTLP protobuf, OTLP JSON) produces the same
intermediate ``RAW_SPANS`` Arrow table. ``finalize`` then checks and converts it
column-wise with Arrow compute, so no per-span Python runs on the happy path:

- spans whose identity or time is unusable (ids of the wrong length, not hex or
  all zeros; end before start; times outside 2000–2100) are refused: they go to
  ``rejected`` with the reason and the span as JSON (a row each for the first
  ``MAX_SPAN_ROWS_PER_MESSAGE`` of a message, then one summary: ``collector.rejects``);
- spans whose content is damaged (attribute values over the cap, non-UTF-8 text)
  are stored repaired, flagged in ``ingest_flags``, and the damage is also
  recorded in ``rejected`` so nothing is changed silently.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from collector.rejects import Rejects
from store.schema import SPANS

RAW_SPANS: Final = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("name", pa.string()),
        ("scope_name", pa.string()),
        ("kind", pa.int64()),
        ("start_ns", pa.int64()),
        ("end_ns", pa.int64()),
        ("status_code", pa.int64()),
        ("status_message", pa.string()),
        ("attributes", pa.string()),
        ("events", pa.string()),
        ("links", pa.string()),
        ("link_trace_id", pa.string()),
        ("link_span_id", pa.string()),
        ("workflow_id", pa.string()),
        ("subject", pa.string()),
        ("message_id", pa.string()),
        ("operation", pa.string()),
        ("consumer_group", pa.string()),
        ("nak_delay_ms", pa.float64()),
        ("service_name", pa.string()),
        ("service_instance_id", pa.string()),
        ("resource", pa.string()),
        ("ingest_flags", pa.string()),
        # where the span came from: filled per payload by ``decoding``
        ("exporter_id", pa.string()),
        ("exporter_batch_seq", pa.int64()),
        ("exporter_spans_dropped", pa.int64()),
        ("source", pa.string()),
        ("stream_seq", pa.int64()),
        ("message", pa.int64()),  # its message's index in the ``Rejects``: caps are per message
    ]
)

MAX_ATTRIBUTE_CHARS: Final = 8192
"""Default cap on the JSON text of one span's attributes before values are truncated."""

# 2000-01-01 and 2100-01-01 in Unix nanoseconds: anything outside is a broken clock
# or a unit mistake (a 1970 timestamp is usually seconds sent as nanoseconds).
MIN_TIME_NS: Final = 946_684_800 * 10**9
MAX_TIME_NS: Final = 4_102_444_800 * 10**9
OUT_OF_RANGE_NS: Final = -1
"""What decoders put in a time column for a value that does not fit int64."""

_KIND_NAMES = pa.array(["unspecified", "internal", "server", "client", "producer", "consumer"])
_STATUS_NAMES = pa.array(["unset", "ok", "error"])


def raw_table(columns: dict[str, Any]) -> pa.Table:
    """A ``RAW_SPANS`` table from lists or arrays; missing columns are all-null."""
    n = len(columns["trace_id"])
    arrays = []
    for f in RAW_SPANS:
        values = columns.get(f.name)
        if values is None:
            arrays.append(pa.nulls(n, f.type))
        elif isinstance(values, pa.Array | pa.ChunkedArray):
            arrays.append(values.cast(f.type))
        elif f.name in ("start_ns", "end_ns"):
            try:
                arrays.append(pa.array(values, type=f.type))
            except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
                arrays.append(pa.array([int64_or_sentinel(v) for v in values], type=f.type))
        else:
            arrays.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(arrays, schema=RAW_SPANS)


def fits_int64(value: int) -> bool:
    return -(2**63) <= value < 2**63


def int64_or_sentinel(value: Any) -> int:
    """A time that fits int64 nanoseconds, else ``OUT_OF_RANGE_NS`` (refused later)."""
    if type(value) is int and fits_int64(value):  # not a bool: Arrow refuses it as int64
        return value
    return OUT_OF_RANGE_NS


def number_or_none(value: Any) -> float | None:
    """A promoted numeric attribute (``nak_delay_ms``) as a float; None for any other
    type (a bool, a string): it stays readable in ``attributes``."""
    if type(value) is float:
        return value
    if type(value) is int and fits_int64(value):
        return float(value)
    return None


def finalize(
    raw: pa.Table,
    *,
    rejects: Rejects,
    max_attribute_chars: int = MAX_ATTRIBUTE_CHARS,
) -> pa.Table:
    """Validate ``raw`` and convert it to the ``spans`` schema; refused spans go to ``rejects``.

    Its cost is mostly per call, not per span: finalize many payloads' spans at once.
    """
    if raw.num_rows == 0:
        return SPANS.empty_table()
    problems = _problems(raw)
    bad = pc.is_valid(problems)
    if pc.any(bad).as_py():
        where = pc.indices_nonzero(bad)
        reasons = problems.take(where).to_pylist()
        messages = raw["message"].take(where).to_pylist()
        listed = [
            k
            for k, (message, reason) in enumerate(zip(messages, reasons, strict=True))
            if rejects.keeps_span(reason=reason, message=message)
        ]
        if listed:  # only the spans listed become Python rows (a flood has 100k refused)
            rows = raw.take(where.take(pa.array(listed))).drop_columns(["message"])
            for k, row in zip(listed, rows.to_pylist(), strict=True):
                rejects.add(
                    reason=reasons[k], raw=json.dumps(row, default=str), message=messages[k]
                )
        raw = raw.filter(pc.invert(bad))
    raw = _truncate_huge_attributes(raw, rejects=rejects, max_chars=max_attribute_chars)
    return _to_spans(raw, received_at=rejects.received_at)


def _problems(raw: pa.Table) -> pa.Array:
    """Per span, the reason it is refused, or null when it is fine."""
    checks = [
        (_bad_id(raw["trace_id"], 32), "trace_id is not 32 hex characters, or is all zeros"),
        (_bad_id(raw["span_id"], 16), "span_id is not 16 hex characters, or is all zeros"),
        (
            pc.and_(pc.is_valid(raw["parent_span_id"]), _bad_id(raw["parent_span_id"], 16)),
            "parent_span_id is not 16 hex characters",
        ),
        (_bad_time(raw["start_ns"]), "start time is outside the years 2000-2100"),
        (_bad_time(raw["end_ns"]), "end time is outside the years 2000-2100"),
        (pc.less(raw["end_ns"], raw["start_ns"]), "span ends before it starts"),
    ]
    reason = pa.nulls(raw.num_rows, pa.string())
    for mask, text in reversed(checks):
        reason = pc.if_else(pc.fill_null(mask, True), pa.scalar(text), reason)
    return reason


def _bad_id(ids: pa.ChunkedArray, length: int) -> pa.ChunkedArray:
    # length and all-zeros by comparison; the regex only searches for a non-hex character
    bad = pc.or_(
        pc.not_equal(pc.binary_length(ids), length),
        pc.or_(pc.equal(ids, "0" * length), pc.match_substring_regex(ids, "[^0-9a-f]")),
    )
    return pc.fill_null(bad, True)


def _bad_time(ns: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.fill_null(pc.or_(pc.less(ns, MIN_TIME_NS), pc.greater_equal(ns, MAX_TIME_NS)), True)


_TRUNCATED: Final = "attribute values truncated (stored, flagged attribute_truncated)"


def _truncate_huge_attributes(raw: pa.Table, *, rejects: Rejects, max_chars: int) -> pa.Table:
    attributes = raw["attributes"]
    huge = pc.fill_null(pc.greater(pc.utf8_length(attributes), max_chars), False)
    if not pc.any(huge).as_py():
        return raw
    texts = attributes.to_pylist()
    flags = raw["ingest_flags"].to_pylist()
    messages = raw["message"].to_pylist()
    for i in pc.indices_nonzero(huge).to_pylist():
        original = texts[i]
        texts[i], keys = _truncated_attributes(original, max_chars=max_chars)
        flags[i] = _add_flag(flags[i], "attribute_truncated")
        if rejects.keeps_span(reason=_TRUNCATED, message=messages[i], stored=True):
            rejects.add(
                reason=f"attribute values truncated to {max_chars} characters "
                f"(keys: {', '.join(keys)}); the span is stored, flagged attribute_truncated",
                raw=original,
                message=messages[i],
            )
    raw = raw.set_column(
        raw.schema.get_field_index("attributes"), "attributes", pa.array(texts, pa.string())
    )
    return raw.set_column(
        raw.schema.get_field_index("ingest_flags"), "ingest_flags", pa.array(flags, pa.string())
    )


def _truncated_attributes(text: str, *, max_chars: int) -> tuple[str, list[str]]:
    try:
        attributes = json.loads(text)
    except (ValueError, RecursionError):  # nested too deeply: read as text, like bad JSON
        return json.dumps({"choreo.attributes.unparsed": text[:max_chars]}), ["(unparsed)"]
    if not isinstance(attributes, dict):
        return json.dumps({"choreo.attributes.unparsed": text[:max_chars]}), ["(not an object)"]
    keys = []
    per_value = max(64, max_chars // max(1, len(attributes)))
    for key, value in attributes.items():
        rendered = value if isinstance(value, str) else json.dumps(value)
        if len(rendered) > per_value:
            attributes[key] = rendered[:per_value] + "…[truncated]"
            keys.append(key)
    text = json.dumps(attributes, ensure_ascii=False)
    if len(text) > max_chars:  # many values, or long keys: the largest go whole
        # each entry costs its "key": value and a ", " between entries
        sizes = {k: len(json.dumps({k: v}, ensure_ascii=False)) for k, v in attributes.items()}
        over = len(text) - max_chars + 64  # room for the count of those dropped
        dropped = []
        for key in sorted(sizes, key=sizes.__getitem__, reverse=True):
            if over <= 0:
                break
            del attributes[key]
            dropped.append(key)
            over -= sizes[key]
        attributes["choreo.attributes.dropped"] = len(dropped)
        named = ", ".join(key[:64] for key in dropped[:10])
        more = f" and {len(dropped) - 10} more" if len(dropped) > 10 else ""
        keys.append(f"dropped whole: {named}{more}")
        text = json.dumps(attributes, ensure_ascii=False)
    return text, keys


def _add_flag(flags: str | None, flag: str) -> str:
    return flag if not flags else f"{flags},{flag}"


def _to_spans(raw: pa.Table, *, received_at: dt.datetime) -> pa.Table:
    n = raw.num_rows
    if n == 0:
        return SPANS.empty_table()
    kind = _names(raw["kind"], _KIND_NAMES)
    status = _names(raw["status_code"], _STATUS_NAMES)
    start_us = pc.divide(raw["start_ns"], 1000)
    end_us = pc.divide(raw["end_ns"], 1000)
    duration_ms = pc.divide(pc.cast(pc.subtract(raw["end_ns"], raw["start_ns"]), pa.float64()), 1e6)
    columns = {
        "trace_id": raw["trace_id"],
        "span_id": raw["span_id"],
        "parent_span_id": raw["parent_span_id"],
        "name": raw["name"],
        "kind": kind,
        "service_name": raw["service_name"],
        "service_instance_id": raw["service_instance_id"],
        "scope_name": raw["scope_name"],
        "start_time": pc.cast(start_us, SPANS.field("start_time").type),
        "end_time": pc.cast(end_us, SPANS.field("end_time").type),
        "duration_ms": duration_ms,
        "status_code": status,
        "status_message": raw["status_message"],
        "attributes": raw["attributes"],
        "resource": raw["resource"],
        "events": raw["events"],
        "links": raw["links"],
        "workflow_id": raw["workflow_id"],
        "subject": raw["subject"],
        "message_id": raw["message_id"],
        "operation": raw["operation"],
        "consumer_group": raw["consumer_group"],
        # decoders that walk the links fill these; the segment writer fills the rest
        # from the links JSON, in DuckDB, in parallel (collector/sql/spans_segment.sql)
        "link_trace_id": raw["link_trace_id"],
        "link_span_id": raw["link_span_id"],
        "nak_delay_ms": raw["nak_delay_ms"],
        "received_at": pa.repeat(pa.scalar(received_at, SPANS.field("received_at").type), n),
        "exporter_id": raw["exporter_id"],
        "exporter_batch_seq": raw["exporter_batch_seq"],
        "exporter_spans_dropped": raw["exporter_spans_dropped"],
        "ingest_flags": raw["ingest_flags"],
    }
    return pa.table([columns[f.name] for f in SPANS], schema=SPANS)


def _names(codes: pa.ChunkedArray, names: pa.Array) -> pa.ChunkedArray:
    in_range = pc.and_(pc.greater_equal(codes, 0), pc.less(codes, len(names)))
    index = pc.if_else(pc.fill_null(in_range, False), codes, 0)
    return pc.take(names, index)
