"""``configure()``: a tracer provider whose spans go onto NATS, and its handle.

One process may host several services (the samples run several agents in one
process), so ``configure()`` returns a ``Telemetry`` handle and can leave the
global tracer provider alone (``install_global=False``). When the application
already installed an SDK ``TracerProvider`` (say, exporting to another backend),
``configure()`` adds its exporter to that provider instead of replacing it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from instrumentation import semconv
from instrumentation.errors import ConfigurationError
from instrumentation.nats_span_exporter import (
    DEFAULT_MAX_BATCH_SPANS,
    DEFAULT_MAX_QUEUE_SPANS,
    Encoding,
    ExporterStats,
    NatsSpanProcessor,
)
from instrumentation.unconfigured_tracer import UnconfiguredTracer, provider_drops_spans

log = logging.getLogger(__name__)

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
INSTRUMENTATION_SCOPE = "choreoscope.instrumentation"
INSTRUMENTATION_VERSION = "0.1.0"

_registry: dict[str, Telemetry] = {}
_installed_globally: TracerProvider | None = None
_registry_lock = threading.Lock()


@dataclass
class Telemetry:
    """What ``configure()`` set up for one service: its tracer and its exporter.

    ``clock`` gives the Unix-epoch nanoseconds every choreoscope span starts and
    ends at (tests fix it); ``exporter`` is None when spans are not sent to NATS.
    """

    service_name: str
    tracer_provider: trace.TracerProvider
    exporter: NatsSpanProcessor | None = None
    clock: Callable[[], int] = time.time_ns
    tracer: trace.Tracer = field(init=False)

    def __post_init__(self) -> None:
        self.tracer = self.tracer_provider.get_tracer(
            INSTRUMENTATION_SCOPE, INSTRUMENTATION_VERSION
        )

    def stats(self) -> ExporterStats | None:
        """The exporter's totals (spans exported, dropped, queued), if it exports."""
        return self.exporter.stats() if self.exporter is not None else None

    def force_flush(self, *, timeout: float = 10.0) -> bool:
        """Wait until every span ended so far is acked by JetStream; False on timeout."""
        if self.exporter is not None:
            return self.exporter.force_flush(int(timeout * 1000))
        flush = getattr(self.tracer_provider, "force_flush", None)
        return bool(flush(int(timeout * 1000))) if flush else True

    def shutdown(self, *, timeout: float = 10.0, report_loss: bool = True) -> None:
        """Flush and stop this service's exporter; spans not sent in time count as dropped
        (``stats()``), and are logged unless ``report_loss`` is false."""
        if self.exporter is not None:
            self.exporter.shutdown(timeout, report_loss=report_loss)
        with _registry_lock:
            if _registry.get(self.service_name) is self:
                del _registry[self.service_name]


def configure(
    *,
    service_name: str,
    nats_url: str = DEFAULT_NATS_URL,
    nats_options: Mapping[str, Any] | None = None,
    service_version: str = "0.0.0",
    service_instance_id: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    encoding: Encoding = "columnar",
    export: bool = True,
    install_global: bool = True,
    tracer_provider: TracerProvider | None = None,
    id_generator: IdGenerator | None = None,
    clock: Callable[[], int] | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    max_queue_spans: int = DEFAULT_MAX_QUEUE_SPANS,
    max_batch_spans: int = DEFAULT_MAX_BATCH_SPANS,
    schedule_delay: float = 0.5,
) -> Telemetry:
    """Make ``service_name`` traceable: spans go to ``choreo.spans.<service_name>``.

    ``nats_options`` are passed to ``nats.connect`` (``user_credentials``, ``token``,
    ``nkeys_seed``, ``tls``, ...) and win over the exporter's own; a name it does not
    take raises ``ConfigurationError``. The exporter connects on a thread and event loop
    of its own: callbacks given there (``error_cb``, ``disconnected_cb``, ...) run on
    that loop, not the application's. ``encoding`` is ``"columnar"`` (fast, read by the
    collector) or ``"otlp"`` (stock ``ExportTraceServiceRequest`` protobuf).
    ``install_global=False`` keeps the global tracer provider and propagators as
    they are, for processes that host several services. ``export=False`` with
    ``span_processors`` (e.g. an in-memory exporter) is how tests look at spans.
    Called again for a service already configured on the global provider, it warns
    and returns the first handle (``shutdown()`` it first to configure it anew).
    """
    global _installed_globally
    if not service_name or any(c in service_name for c in " .*>\t\r\n"):
        raise ConfigurationError(
            setting="service_name",
            value=service_name,
            fix="use a non-empty name without spaces, dots, '*' or '>' (it ends a NATS subject)",
        )
    if install_global and export and tracer_provider is None:
        again = _configured_globally(service_name)
        if again is not None:
            log.warning(
                "configure(service_name=%r) was already called in this process: returning "
                "the handle it made (a second exporter on the same provider would send every "
                "span twice). To change its settings, call that handle's shutdown() first",
                service_name,
            )
            return again
    exporter = (
        NatsSpanProcessor(
            service_name=service_name,
            nats_url=nats_url,
            nats_options=nats_options,
            encoding=encoding,
            max_queue_spans=max_queue_spans,
            max_batch_spans=max_batch_spans,
            schedule_delay=schedule_delay,
        )
        if export
        else None
    )
    provider = tracer_provider
    if provider is None and install_global:
        existing = trace.get_tracer_provider()
        if isinstance(existing, TracerProvider):
            provider = existing
            owner = existing.resource.attributes.get(semconv.SERVICE_NAME)
            if existing is _installed_globally and owner != service_name:
                log.warning(
                    "configure(service_name=%r) joins the global provider that configure() "
                    "set up for %r: both exporters now see every span. For several services "
                    "in one process pass install_global=False and give each its handle",
                    service_name,
                    owner,
                )
            else:
                log.info(
                    "configure(%s): adding the NATS exporter to the existing provider", service_name
                )
    if provider is None:
        resource = Resource.create(
            {
                semconv.SERVICE_NAME: service_name,
                semconv.SERVICE_INSTANCE_ID: service_instance_id or _instance_id(),
                semconv.SERVICE_VERSION: service_version,
                **dict(resource_attributes or {}),
            }
        )
        provider = TracerProvider(resource=resource, id_generator=id_generator)
        if install_global:
            trace.set_tracer_provider(provider)
            _installed_globally = provider
    for processor in (*span_processors, *([exporter] if exporter else [])):
        provider.add_span_processor(processor)
    if install_global:
        propagate.set_global_textmap(
            CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
        )
    telemetry = Telemetry(
        service_name=service_name,
        tracer_provider=provider,
        exporter=exporter,
        clock=clock or time.time_ns,
    )
    with _registry_lock:
        _registry[service_name] = telemetry
    return telemetry


def _configured_globally(service_name: str) -> Telemetry | None:
    """The open handle an earlier configure() made for this service on the global
    provider, if there is one."""
    with _registry_lock:
        found = _registry.get(service_name)
    if found is None or found.exporter is None or found.exporter.closed:
        return None
    return found if found.tracer_provider is trace.get_tracer_provider() else None


def telemetry_for(
    service_name: str,
    *,
    telemetry: Telemetry | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> Telemetry:
    """The handle a component of ``service_name`` should use.

    An explicit handle wins, then an explicit provider, then what ``configure()``
    set up for that service, then the global provider (spans go wherever it sends them;
    before ``configure()`` installs one, nowhere, which the first span lost says).
    """
    if telemetry is not None:
        return telemetry
    if tracer_provider is not None:
        return Telemetry(service_name=service_name, tracer_provider=tracer_provider)
    with _registry_lock:
        found = _registry.get(service_name)
    if found is not None:
        return found
    provider = trace.get_tracer_provider()
    handle = Telemetry(service_name=service_name, tracer_provider=provider)
    if provider_drops_spans(provider):
        # configure() may still come: the proxy then forwards every span to the provider
        # it installs. Say that spans go nowhere only when one does
        handle.tracer = UnconfiguredTracer(handle.tracer, service_name=service_name)
    return handle


def _instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
