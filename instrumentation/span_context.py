"""``SpanContext``s for ids that are valid by construction, made without
``SpanContext.__new__``'s range checks and keyword handling.

A ``SpanContext`` is a tuple ``(trace_id, span_id, is_remote, trace_flags,
trace_state, is_valid)``; ``__new__`` computes ``is_valid`` and fills defaults,
about 0.4 µs, and a traced event makes four of them. The ids given here were
just generated, or parsed from 32 and 16 lowercase hex digits that are not all
zero, so they are valid. If the API's layout ever differs from the one checked
at import, this falls back to the constructor.
"""

from __future__ import annotations

from opentelemetry.trace import SpanContext, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE, TraceState

_new_tuple = tuple.__new__


def _fast(
    trace_id: int, span_id: int, remote: bool, flags: TraceFlags, state: TraceState | None
) -> SpanContext:
    return _new_tuple(
        SpanContext,
        (trace_id, span_id, remote, flags, DEFAULT_TRACE_STATE if state is None else state, True),
    )


def _checked(
    trace_id: int, span_id: int, remote: bool, flags: TraceFlags, state: TraceState | None
) -> SpanContext:
    return SpanContext(trace_id, span_id, is_remote=remote, trace_flags=flags, trace_state=state)


def _layout_is_known() -> bool:
    flags = TraceFlags(TraceFlags.SAMPLED)
    made = _fast(1, 2, True, flags, None)
    return made == _checked(1, 2, True, flags, None) and (made.is_valid, made.is_remote) == (
        True,
        True,
    )


valid_span_context = _fast if _layout_is_known() else _checked
