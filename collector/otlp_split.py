"""Splitting an OTLP/HTTP export too large for one NATS message into several that fit.

NATS refuses a message over the server's ``max_payload`` (1 MiB by default), while
a stock SDK's batch of 512 spans carrying a few KB of attributes each (an LLM
prompt, a payload) is larger, and the receiver accepts bodies up to 8 MiB. Refused
with a 413, the SDK dropped the whole batch. Here such a request becomes several
requests of the same encoding, each holding whole spans under their own resource
and scope, so the collector stores them exactly as it would the original.

Spans are moved as they are, never decoded: a protobuf request is read with the
lenient types (``otlp_lenient``: strings as bytes), so text that is not UTF-8 stays
as it came and is flagged by the decoder as usual; JSON is read with
``surrogateescape`` for the same reason. A span that does not fit a message even
alone is left out and counted, for the receiver to refuse it by name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collector import otlp_lenient
from instrumentation import wire

_ENVELOPE_BYTES = 64
"""Room for the tags and lengths around a span's resource, scope and the span."""
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class UnsplittableExport(Exception):
    """The body is not a request of the shape this encoding has: it cannot be split."""


@dataclass(frozen=True)
class SplitExport:
    parts: list[bytes]
    """Requests each at most the limit, together every span that fits one."""
    too_large: int
    """Spans larger than the limit on their own, in no part."""


@dataclass(frozen=True)
class _Item:
    """One span (or a piece carried whole) and the resource and scope it sits under."""

    group: tuple[int, int]
    size: int
    head_size: int


def split_export(body: bytes, *, encoding: str, limit: int) -> SplitExport:
    """``body`` as requests of ``encoding`` of at most ``limit`` bytes each.

    Raises ``UnsplittableExport`` if the body cannot be read as such a request.
    """
    if encoding == wire.CONTENT_TYPE_OTLP_JSON:
        return _split_json(body, limit=limit)
    return _split_protobuf(body, limit=limit)


def _split_protobuf(body: bytes, *, limit: int) -> SplitExport:
    request_class, _ = otlp_lenient.lenient_request_class()
    try:
        request = request_class.FromString(body)
    except Exception as e:  # DecodeError, or a nesting upb refuses
        raise UnsplittableExport(str(e)) from None
    spans: list[tuple[int, int, Any]] = []
    items: list[_Item] = []
    for r, resource_spans in enumerate(request.resource_spans):
        resource_size = resource_spans.ByteSize() - sum(
            s.ByteSize() for s in resource_spans.scope_spans
        )
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            head = (
                resource_size
                + scope_spans.ByteSize()
                - sum(x.ByteSize() for x in scope_spans.spans)
            )
            for span in scope_spans.spans:
                spans.append((r, s, span))
                items.append(_Item((r, s), span.ByteSize(), head))

    def build(indexes: list[int]) -> bytes:
        part = request_class()
        groups: dict[tuple[int, int], Any] = {}
        for i in indexes:
            r, s, span = spans[i]
            scope = groups.get((r, s))
            if scope is None:
                source = request.resource_spans[r]
                resource = part.resource_spans.add()
                resource.resource.CopyFrom(source.resource)
                resource.schema_url = source.schema_url
                scope = groups[(r, s)] = resource.scope_spans.add()
                scope.scope.CopyFrom(source.scope_spans[s].scope)
                scope.schema_url = source.scope_spans[s].schema_url
            scope.spans.append(span)
        return part.SerializeToString()

    return _pack(items, build=build, limit=limit)


def _split_json(body: bytes, *, limit: int) -> SplitExport:
    try:
        request = json.loads(body.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError) as e:
        raise UnsplittableExport(str(e)) from None
    resources = request.get("resourceSpans") if isinstance(request, dict) else None
    if not isinstance(resources, list):
        raise UnsplittableExport("no resourceSpans list")
    # (resource head, scope head, span); a piece of another shape is carried whole,
    # as a resource or a scope of its own, and the decoder says what is wrong with it
    pieces: list[tuple[Any, Any, Any]] = []
    items: list[_Item] = []
    for r, resource in enumerate(resources):
        scopes = resource.get("scopeSpans") if isinstance(resource, dict) else None
        if not isinstance(scopes, list):
            pieces.append((resource, None, None))
            items.append(_Item((r, -1), _size(resource), 0))
            continue
        resource_head = {k: v for k, v in resource.items() if k != "scopeSpans"}
        for s, scope in enumerate(scopes):
            spans = scope.get("spans") if isinstance(scope, dict) else None
            if not isinstance(spans, list):
                pieces.append((resource_head, scope, None))
                items.append(_Item((r, s), _size(scope), _size(resource_head)))
                continue
            scope_head = {k: v for k, v in scope.items() if k != "spans"}
            head = _size(resource_head) + _size(scope_head)
            for span in spans:
                pieces.append((resource_head, scope_head, span))
                items.append(_Item((r, s), _size(span), head))

    def build(indexes: list[int]) -> bytes:
        out: list[Any] = []
        groups: dict[tuple[int, int], list[Any]] = {}
        for i in indexes:
            resource_head, scope_head, span = pieces[i]
            if scope_head is None:  # a resource carried whole
                out.append(resource_head)
                continue
            if span is None:  # a scope carried whole
                out.append({**resource_head, "scopeSpans": [scope_head]})
                continue
            spans = groups.get(items[i].group)
            if spans is None:
                spans = groups[items[i].group] = []
                out.append({**resource_head, "scopeSpans": [{**scope_head, "spans": spans}]})
            spans.append(span)
        return _encode({"resourceSpans": out})

    return _pack(items, build=build, limit=limit)


def _size(value: Any) -> int:
    return len(_encode(value))


def _encode(value: Any) -> bytes:
    return _dumps(value).encode("utf-8", "surrogateescape")


def _pack(items: list[_Item], *, build: Callable[[list[int]], bytes], limit: int) -> SplitExport:
    """Spans in order, as many a part as its estimated size allows; a part that comes
    out over ``limit`` all the same is halved until it fits."""
    parts: list[bytes] = []
    too_large = 0
    current: list[int] = []
    size = 0
    groups: set[tuple[int, int]] = set()

    def flush(indexes: list[int]) -> None:
        nonlocal too_large
        if not indexes:
            return
        data = build(indexes)
        if len(data) <= limit:
            parts.append(data)
        elif len(indexes) == 1:
            too_large += 1
        else:
            half = len(indexes) // 2
            flush(indexes[:half])
            flush(indexes[half:])

    for i, item in enumerate(items):
        cost = item.size + _ENVELOPE_BYTES + (0 if item.group in groups else item.head_size)
        if current and size + cost > limit:
            flush(current)
            current, size, groups = [], 0, set()
            cost = item.size + _ENVELOPE_BYTES + item.head_size
        current.append(i)
        size += cost
        groups.add(item.group)
    flush(current)
    return SplitExport(parts, too_large)
