"""Decoding the exporter's columnar msgpack span batch (DESIGN.md, "Formats").

One msgpack map, one list per column: each list becomes an Arrow array with
``pa.array`` and no per-span Python, except on the rare repair paths (a value
that does not fit its type, non-UTF-8 text).
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

import msgpack
import pyarrow as pa

from collector.rejects import Rejects
from collector.span_batch import (
    RAW_SPANS,
    fits_int64,
    int64_or_sentinel,
    number_or_none,
    raw_table,
)
from instrumentation import semconv
from instrumentation.wire import COLUMNAR_VERSION
from store.schema import RAW_CAP_BYTES

# columnar key -> RAW_SPANS column, for the per-span lists
_COLUMNS: Final = {
    "trace_id": "trace_id",
    "span_id": "span_id",
    "parent_span_id": "parent_span_id",
    "name": "name",
    "scope": "scope_name",
    "kind": "kind",
    "start_ns": "start_ns",
    "end_ns": "end_ns",
    "status_code": "status_code",
    "status_message": "status_message",
    "attributes": "attributes",
    "events": "events",
    "links": "links",
    "workflow_id": "workflow_id",
    "subject": "subject",
    "message_id": "message_id",
    "operation": "operation",
    "consumer_group": "consumer_group",
    "nak_delay_ms": "nak_delay_ms",  # optional: sent only when a span has it
}
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
_REQUIRED: Final = ("trace_id", "span_id", "name", "start_ns", "end_ns")
_TIME_COLUMNS: Final = ("start_ns", "end_ns")


class MalformedBatch(ValueError):
    """The whole input is unreadable; its text says why."""


def decode_columnar(payload: bytes, *, rejects: Rejects) -> pa.Table:
    """A ``RAW_SPANS`` table from one columnar batch; raises ``MalformedBatch``."""
    try:
        batch = msgpack.unpackb(
            payload, raw=False, unicode_errors="surrogateescape", strict_map_key=False
        )  # a resource key that is a number is read as text, as a binary one is
    except Exception as e:  # msgpack raises several unrelated types for bad input
        raise MalformedBatch(f"not a msgpack map: {e}") from None
    if not isinstance(batch, dict):
        raise MalformedBatch(f"expected a msgpack map, got {type(batch).__name__}")
    if batch.get("v") != COLUMNAR_VERSION:
        raise MalformedBatch(
            f"columnar format version {batch.get('v')!r}, expected {COLUMNAR_VERSION}"
        )
    n = batch.get("n")
    if not isinstance(n, int) or n < 0:
        raise MalformedBatch(f"span count n={n!r} is not a non-negative integer")
    for key in _REQUIRED:
        # checked before anything of size n is made: the lists' length bounds n
        values = batch.get(key)
        if values is None:
            raise MalformedBatch(f"column {key!r} is missing")
        if not isinstance(values, list) or len(values) != n:
            raise MalformedBatch(f"column {key!r} is not a list of n={n} values")
    flags: list[str | None] = [None] * n
    columns: dict[str, Any] = {}
    bad: dict[int, tuple[str, Any]] = {}  # span index → (column, value) it is refused for
    for key, column in _COLUMNS.items():
        values = batch.get(key)
        if values is None:
            continue
        if not isinstance(values, list) or len(values) != n:
            raise MalformedBatch(f"column {key!r} is not a list of n={n} values")
        columns[column] = _array(column, values, flags, bad)
    if bad:  # each span with a value of the wrong type is refused alone
        for i, (column, value) in sorted(bad.items()):
            kind, reason = _refusal(column, value)
            if not rejects.keeps_span(reason=kind):
                continue
            # as sent: the decoded row would show the value the span was refused for
            span = {key: batch[key][i] for key in _COLUMNS if batch.get(key) is not None}
            rejects.add(
                reason=f"{reason}: it is not stored; the other spans of the batch are",
                raw=_dumps(span),
            )
        rejects.unread_spans += len(bad)
        keep = pa.array([i not in bad for i in range(n)])
        columns = {name: array.filter(keep) for name, array in columns.items()}
        flags = [f for i, f in enumerate(flags) if i not in bad]
        n -= len(bad)
    resource = batch.get("resource") or {}
    if not isinstance(resource, dict):
        raise MalformedBatch("'resource' is not a map")
    resource_json, resource_damaged = _resource_json(resource)
    if resource_damaged:
        flags = [_flag(f, "invalid_utf8") for f in flags]
    columns["resource"] = pa.repeat(pa.scalar(resource_json), n)
    for column, key in (
        ("service_name", semconv.SERVICE_NAME),
        ("service_instance_id", semconv.SERVICE_INSTANCE_ID),
    ):
        columns[column] = pa.repeat(pa.scalar(_text(resource.get(key)), pa.string()), n)
    if any(flags):
        columns["ingest_flags"] = pa.array(flags, pa.string())
        for _i, f in enumerate(flags):
            if f and "invalid_utf8" in f:
                rejects.add(
                    reason="non-UTF-8 text replaced with U+FFFD; the span is stored, "
                    "flagged invalid_utf8",
                    raw=payload[:RAW_CAP_BYTES],
                    size=len(payload),
                )
                break
    return raw_table(columns) if columns else RAW_SPANS.empty_table()


_ARROW_ERRORS = (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError, TypeError, UnicodeError)


def _array(
    column: str, values: list[Any], flags: list[str | None], bad: dict[int, tuple[str, Any]]
) -> pa.Array:
    kind = RAW_SPANS.field(column).type
    try:
        return pa.array(values, type=kind)
    except _ARROW_ERRORS:
        if column in _TIME_COLUMNS:
            return pa.array([_nanos(column, i, v, bad) for i, v in enumerate(values)], kind)
        if kind == pa.float64():  # a promoted number that is not one: null, as absent
            return pa.array([number_or_none(v) for v in values], type=kind)
        # one value at a time (rare): text repaired, a value of another type refuses
        # its span (``bad``), the others are kept
        out = []
        for i, value in enumerate(values):
            if kind == pa.string() and isinstance(value, str):
                out.append(_repaired(value, i, flags))
                continue
            try:
                pa.array([value], type=kind)
                out.append(value)
            except _ARROW_ERRORS:
                out.append(None)
                bad.setdefault(i, (column, value))
        return pa.array(out, type=kind)


def _nanos(column: str, index: int, value: Any, bad: dict[int, tuple[str, Any]]) -> int | None:
    """A time as Arrow reads it (a float is cut to a whole number), out of int64's
    range as ``OUT_OF_RANGE_NS`` (refused as outside the years taken), no number at
    all in ``bad``: read as out of range, ``"soon"`` or ``true`` was refused as
    "outside the years 2000-2100" (raw ``-1``), which sent the user looking at clocks."""
    if value is None or (type(value) is int and fits_int64(value)):
        return value
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return int64_or_sentinel(int(value))
    bad.setdefault(index, (column, value))
    return None


def _refusal(column: str, value: Any) -> tuple[str, str]:
    """Why a span is refused for ``value`` in ``column``: the kind of refusal (what
    ``Rejects`` counts past a message's first spans), and the reason, with the value."""
    if column in _TIME_COLUMNS:
        return (
            f"{column} is not a number",
            f"{column} {value!r:.40} is not a number: send nanoseconds since 1970, as an integer",
        )
    shape = f"{column} is {type(value).__name__}"
    return (
        f"span of an unexpected shape ({shape})",
        f"span of an unexpected shape ({shape} {str(value)[:40]!r})",
    )


def _repaired(value: str | None, index: int, flags: list[str | None]) -> str | None:
    if value is None:
        return None
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        flags[index] = _flag(flags[index], "invalid_utf8")
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _flag(flags: str | None, flag: str) -> str:
    if not flags:
        return flag
    return flags if flag in flags.split(",") else f"{flags},{flag}"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _resource_json(resource: dict[str, Any]) -> tuple[str, bool]:
    if not all(isinstance(key, str) for key in resource):
        # msgpack allows binary keys; JSON does not: read them as text
        resource = {_key_text(key): value for key, value in resource.items()}
    text = _dumps(resource)
    try:
        text.encode("utf-8")
        return text, False
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), True


def _key_text(key: Any) -> str:
    if isinstance(key, bytes):
        return key.decode("utf-8", "surrogateescape")
    return key if isinstance(key, str) else str(key)
