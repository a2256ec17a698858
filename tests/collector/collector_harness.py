"""Helpers for the collector tests: a collector running in this process, polling the
store until it shows what a test expects, and publishing span batches."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import nats
from nats.js import JetStreamContext

from collector.service import CollectorConfig, run_collector
from instrumentation import wire
from store import StoreLayout, open_store


def query(data_dir: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    return open_store(data_dir).execute(sql, params or []).fetchall()


def scalar(data_dir: Path, sql: str) -> Any:
    return query(data_dir, sql)[0][0]


def block_todays_partition(data_dir: Path, table: str) -> Path:
    """Make ``table`` unwritable today, the honest way (root ignores permission
    bits): the date folder its segments need is taken by a plain file, so every
    mkdir or open beneath it fails with an OSError from the kernel. Unlink the
    returned path to give the space back."""
    layout = StoreLayout.at(data_dir)
    layout.ensure()
    today = layout.partition_dir(table, dt.datetime.now(dt.UTC)).parent
    today.parent.mkdir(parents=True, exist_ok=True)
    today.write_text("in the way")
    return today


async def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.1
) -> Any:
    """Poll until ``predicate()`` (or the awaitable it returns) is truthy; its last value
    is asserted by the caller."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
        await asyncio.sleep(interval)
    return value


async def wait_for_count(data_dir: Path, sql: str, expected: int, timeout: float = 20.0) -> int:
    """Poll ``sql`` (one integer) until it equals ``expected``; returns the last value."""
    last = -1

    def check() -> bool:
        nonlocal last
        last = scalar(data_dir, sql)
        return last == expected

    await wait_for(check, timeout=timeout)
    return last


@contextlib.asynccontextmanager
async def running_collector(
    nats_url: str, data_dir: Path, **overrides: Any
) -> AsyncIterator[asyncio.Task[Any]]:
    """A collector in this process with test-sized intervals; stopped on exit."""
    options: dict[str, Any] = {
        "flush_interval": 0.2,
        "otlp_http": None,
        "decode_workers": 0,
        "log_interval": 1.0,
        "maintenance_interval": 3600.0,
    }
    options.update(overrides)
    config = CollectorConfig(data_dir=data_dir, servers=nats_url.split(","), **options)
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(run_collector(config, stop=stop, on_ready=lambda _: ready.set()))
    done, _ = await asyncio.wait(
        [task, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED
    )
    if task in done:
        task.result()  # raises what made it fail to start
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@contextlib.asynccontextmanager
async def jetstream(nats_url: str) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


async def publish_spans(
    js: JetStreamContext, payload: bytes, *, content_type: str, service: str = "scorer"
) -> None:
    await js.publish(
        f"{wire.SPANS_SUBJECT_PREFIX}{service}",
        payload,
        headers={wire.CONTENT_TYPE: content_type, wire.EXPORTER_ID: "test-exporter"},
    )
