"""The tracer of a service created before ``configure()``: says so when a span is lost.

An Agent or TracedNats made before ``configure()`` holds the global provider's proxy,
which forwards every span to the provider ``configure()`` installs later, and drops
them until then. A warning at creation told a user who configured next that spans go
nowhere, which was false; this tracer says it at the first span actually dropped
(the global provider still a proxy or a no-op), once per service.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace

log = logging.getLogger(__name__)

_warned: set[str] = set()  # services told that their spans go nowhere
_warned_lock = threading.Lock()


def provider_drops_spans(provider: trace.TracerProvider) -> bool:
    """Whether ``provider`` records nothing: the API's proxy before any SDK provider is
    installed globally, or the no-op one."""
    return isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


class UnconfiguredTracer(trace.Tracer):
    """Starts spans with ``tracer`` (the global proxy's), and warns once per service at
    the first one dropped because no provider was installed."""

    def __init__(self, tracer: trace.Tracer, *, service_name: str) -> None:
        self._tracer = tracer
        self._service_name = service_name
        self._watching = True  # until a span is recorded or the warning is given

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        span = self._tracer.start_span(*args, **kwargs)
        if self._watching:
            self._check(span)
        return span

    @contextlib.contextmanager
    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Iterator[trace.Span]:
        with self._tracer.start_as_current_span(*args, **kwargs) as span:
            if self._watching:
                self._check(span)
            yield span

    def _check(self, span: trace.Span) -> None:
        if span.is_recording():
            self._watching = False  # configure() came: the proxy forwards from now on
            return
        if not provider_drops_spans(trace.get_tracer_provider()):
            return  # not recorded by a provider's choice (a sampler), not lost
        self._watching = False
        name = self._service_name
        with _warned_lock:
            if name in _warned:
                return
            _warned.add(name)
        log.warning(
            "%s is not traced: it started a span while no tracer provider was installed, "
            "so its spans go nowhere (configure() was not called yet, or was called with "
            "install_global=False and its handle not given to it). Call "
            "configure(service_name=%r, nats_url=...) before it publishes or handles "
            "anything, or pass telemetry=",
            name,
            name,
        )
