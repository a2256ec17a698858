"""The collector process: every part wired together, started and stopped as one.

    config = CollectorConfig(data_dir=Path("choreoscope-data"), servers=["nats://..."])
    stats = await run_collector(config, stop=stop_event)

Setting ``stop`` ends it cleanly: fetching stops, what was fetched is written
and acked, the receiver stops accepting, and the connection drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors

from collector.consumer_lag import ConsumerLagSampler
from collector.decode_pool import DecodePool
from collector.maintenance import run_maintenance
from collector.otlp_http import OtlpHttpReceiver
from collector.segment_writer import SegmentWriter
from collector.signal_ingest import SignalIngest
from collector.span_ingest import IngestStats, SpanIngest
from collector.streams import ensure_stream
from instrumentation import wire
from instrumentation.errors import BusUnavailableError, ChoreoscopeError
from instrumentation.throttled_log import ThrottledWarning
from store.layout import StoreLayout

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class CollectorConfig:
    """Everything the collector needs; the front door fills it from settings."""

    data_dir: Path
    servers: list[str]
    nats_options: Mapping[str, Any] = field(default_factory=dict)
    flush_rows: int = 50_000
    flush_interval: float = 1.0
    stream_replicas: int = 1
    stream_max_age: float = 86_400.0
    stream_max_bytes: int = 8 * 2**30
    retention: float = 7 * 86_400.0
    otlp_http: tuple[str, int] | None = ("127.0.0.1", 4318)
    decode_workers: int | None = None
    """Processes decoding OTLP; None means one per core, 0 decodes in a thread."""
    fetch_batch: int = 64
    log_interval: float = 10.0
    maintenance_interval: float = 60.0
    consumer_lag_interval: float = 10.0
    """How often every JetStream consumer's lag is sampled into ``consumer_lag``."""
    compaction_grace: float = 60.0
    ack_wait: float = 30.0
    first_connect_timeout: float = 30.0
    max_write_backoff: float = 30.0
    """The longest wait between two attempts to write to an unwritable store."""
    upkeep: Mapping[str, Callable[[], object]] = field(default_factory=dict)
    """More steps of each maintenance pass, by name (the collect command's: put back a
    ``catalog.duckdb`` deleted or damaged while it runs)."""


async def connect_nats(
    servers: list[str],
    options: Mapping[str, Any],
    *,
    first_connect_timeout: float = 30.0,
    error_log_interval: float = 10.0,
) -> nats.NATS:
    """A connection that reconnects forever once up, logging each change of state.

    The first connection is given ``first_connect_timeout`` seconds: a wrong URL or
    a server that is not there fails with what to check instead of waiting forever.
    A failing connect is logged once, then at most every ``error_log_interval`` seconds.
    """
    warn = ThrottledWarning(error_log_interval, logger=log)

    async def on_error(e: Exception) -> None:
        warn("NATS", e)

    async def on_disconnected() -> None:
        if not nc.is_closed:  # not when the collector itself is closing
            log.warning("NATS: disconnected; reconnecting")

    async def on_reconnected() -> None:
        log.info("NATS: reconnected to %s", nc.connected_url.netloc if nc.connected_url else "?")

    try:
        connecting = nats.connect(
            servers=servers,
            name="choreoscope-collector",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
            **dict(options),
        )
        nc = await asyncio.wait_for(connecting, first_connect_timeout)
    except TimeoutError as e:
        last = f"; last error: {warn.last_error}" if warn.last_error else ""
        raise BusUnavailableError(
            url=_shown(servers), reason=f"no connection within {first_connect_timeout:g}s{last}"
        ) from e
    except (OSError, nats.errors.Error) as e:
        raise BusUnavailableError(url=_shown(servers), reason=str(e) or type(e).__name__) from e
    return nc


async def run_collector(
    config: CollectorConfig,
    *,
    stop: asyncio.Event,
    on_ready: Callable[[str], None] | None = None,
) -> IngestStats:
    """Run until ``stop`` is set; returns the ingest counters."""
    layout = StoreLayout.at(config.data_dir)
    layout.ensure()
    nc = await _connect_unless_stopped(config, stop)
    if nc is None:
        log.info("collector stopped before NATS answered: nothing was fetched")
        return IngestStats()
    js = nc.jetstream(timeout=10)
    workers = config.decode_workers
    writer_id = uuid.uuid4().hex[:12]
    pool = DecodePool(
        layout=layout,
        writer_id=writer_id,
        workers=(os.cpu_count() or 1) if workers is None else workers,
    )
    signal_writer = SegmentWriter(layout=layout, writer_id=f"{writer_id}-signals")
    lag_writer = SegmentWriter(layout=layout, writer_id=f"{writer_id}-lag")
    receiver: OtlpHttpReceiver | None = None
    tasks: list[asyncio.Task[Any]] = []
    try:

        def create_spans_stream() -> Awaitable[bool]:
            return ensure_stream(
                js, name=wire.SPANS_STREAM, subjects=[wire.SPANS_SUBJECTS],
                replicas=config.stream_replicas, max_age=config.stream_max_age,
                max_bytes=config.stream_max_bytes,
            )  # fmt: skip

        await create_spans_stream()
        await pool.warm_up()
        spans = SpanIngest(
            nc=nc, js=js, pool=pool, flush_rows=config.flush_rows,
            flush_interval=config.flush_interval, fetch_batch=config.fetch_batch,
            ack_wait=config.ack_wait, max_backoff=config.max_write_backoff,
            create_stream=create_spans_stream,
        )  # fmt: skip
        await spans.subscribe()
        signals = SignalIngest(
            nc=nc, js=js, writer=signal_writer, flush_interval=config.flush_interval,
            replicas=config.stream_replicas, max_age=config.stream_max_age,
        )  # fmt: skip
        if config.otlp_http is not None:
            host, port = config.otlp_http
            receiver = OtlpHttpReceiver(nc=nc, host=host, port=port)
            try:
                await receiver.start()
            except OSError as e:
                receiver = None
                raise ChoreoscopeError(
                    f"the OTLP/HTTP receiver cannot listen on {host}:{port} ({e}): pass "
                    "--otlp-http HOST:PORT with a free port, or --no-otlp-http"
                ) from e
        lag = ConsumerLagSampler(js=js, writer=lag_writer, interval=config.consumer_lag_interval)
        await signals.prepare()  # before "ready": heartbeats sent then have a stream
        background: dict[str, Callable[[], Awaitable[None]]] = {
            "signals": lambda: signals.run(stop),
            "consumer lag": lambda: lag.run(stop),
            "maintenance": lambda: run_maintenance(
                layout=layout,
                retention=config.retention,
                interval=config.maintenance_interval,
                grace=config.compaction_grace,
                upkeep=config.upkeep,
                stop=stop,
            ),
            "progress log": lambda: _log_progress(spans, signals, lag, config.log_interval, stop),
        }
        tasks = [
            asyncio.create_task(keep_running(name, run, stop=stop), name=name)
            for name, run in background.items()
        ]
        ready = (
            f"collector ready: consuming {wire.SPANS_STREAM} from {_shown(config.servers)} "
            f"into {layout.root}; OTLP/HTTP "
            + (f"on http://{receiver.host}:{receiver.port}/v1/traces" if receiver else "off")
        )
        log.info("%s", ready)
        if on_ready is not None:
            on_ready(ready)
        await spans.run(stop)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info(
            "collector stopped: %d spans, %d rejected, %d messages acked",
            spans.stats.spans, spans.stats.rejected, spans.stats.messages,
        )  # fmt: skip
        return spans.stats
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if receiver is not None:
            await receiver.stop()
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await nc.flush(timeout=2)  # the acks are on their way before closing
        with contextlib.suppress(nats.errors.Error):
            await nc.close()
        pool.close()
        signal_writer.close()
        lag_writer.close()


async def _connect_unless_stopped(config: CollectorConfig, stop: asyncio.Event) -> nats.NATS | None:
    """The first connection, or None if ``stop`` is set first (Ctrl-C while NATS is down)."""
    connecting = asyncio.create_task(
        connect_nats(
            config.servers, config.nats_options, first_connect_timeout=config.first_connect_timeout
        )
    )
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not connecting.done():
            connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        return await connecting
    return None


async def keep_running(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    stop: asyncio.Event,
    first_backoff: float = 1.0,
    max_backoff: float = 30.0,
) -> None:
    """Await ``run()`` until ``stop`` is set, restarting it after a failure.

    A background part of the collector (signals, consumer lag, maintenance) that
    raised would otherwise end silently while spans keep flowing: its failure is
    logged with the traceback, and it is started again after a growing pause.
    """
    backoff = first_backoff
    while not stop.is_set():
        started = time.monotonic()
        try:
            await run()
            return
        except Exception:
            if time.monotonic() - started > max_backoff:
                backoff = first_backoff  # it had been running fine: not a restart loop
            log.exception("the collector's %s task failed; restarting it in %.1fs", name, backoff)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        backoff = min(max_backoff, backoff * 2)


def _shown(servers: list[str]) -> str:
    """Server URLs for a log line, without any user:password in them."""
    shown = []
    for url in servers:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        shown.append(urllib.parse.urlunsplit(parts._replace(netloc=netloc)))
    return ",".join(shown)


async def _log_progress(
    spans: SpanIngest,
    signals: SignalIngest,
    lag: ConsumerLagSampler,
    interval: float,
    stop: asyncio.Event,
) -> None:
    last_spans, last_time = 0, time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        now = time.monotonic()
        stats = spans.stats
        rate = (stats.spans - last_spans) / max(1e-9, now - last_time)
        last_spans, last_time = stats.spans, now
        log.info(
            "ingest: %d spans (%.0f/s), %d rejected, %d segments, lag %s messages; "
            "%d bus events, %d heartbeats, %d consumer lag samples",
            stats.spans, rate, stats.rejected, stats.segments, await spans.lag(),
            signals.counts["bus_events"], signals.counts["heartbeats"], lag.samples,
        )  # fmt: skip
