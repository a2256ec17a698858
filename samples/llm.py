"""Where a real agent would call a language model, with the call recorded for audit.

The samples' "AI" steps are deterministic rules, so they need no model or network.
Each is wrapped the way a model call should be: a ``chat <model>`` span with the
OpenTelemetry GenAI attributes, and the prompt and answer recorded (size-capped)
so an operator can see what the agent was given and what it decided.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry import trace

from instrumentation import semconv

T = TypeVar("T")

AUDIT_CAP_CHARS = 2048
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"


def model_call(
    tracer: trace.Tracer,
    *,
    model: str,
    prompt: str,
    answer: Callable[[], T],
) -> T:
    """Run ``answer()`` as the model's reply to ``prompt``, traced and audited."""
    with tracer.start_as_current_span(f"chat {model}", kind=trace.SpanKind.CLIENT) as span:
        span.set_attribute(GEN_AI_OPERATION_NAME, "chat")
        span.set_attribute(GEN_AI_PROVIDER_NAME, "choreoscope.samples")
        span.set_attribute(GEN_AI_REQUEST_MODEL, model)
        span.set_attribute(semconv.CHOREO_AUDIT_INPUT, prompt[:AUDIT_CAP_CHARS])
        result = answer()
        span.set_attribute(semconv.CHOREO_AUDIT_OUTPUT, _as_text(result)[:AUDIT_CAP_CHARS])
        return result


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)
