"""Bus signals: JetStream advisories become ``bus_events``, heartbeats ``heartbeats``.

They are read from the ``CHOREO_SIGNALS`` stream, so the ones sent while no
collector ran are kept, and acked once their segment is durable. When another
stream already captures those subjects, plain subscriptions are used instead
(and what is sent while the collector is down is missed; a warning says so).

For an advisory, the original message is read back with ``get_msg(stream, seq)``
(limits retention keeps it) to fill its subject, message id, trace and workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
from typing import Any

import duckdb
import nats.errors
import pyarrow as pa
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from collector.durable_pull import ConsumerGoneError, DurablePull
from collector.full_disk import FullDiskNotice, full_disk_path
from collector.rejects import Rejects
from collector.segment_writer import SegmentWriter
from collector.span_batch import fits_int64
from collector.streams import (
    SIGNAL_SUBJECTS,
    SIGNALS_DURABLE,
    SIGNALS_STREAM,
    SubjectsTakenError,
    consumer_config,
    ensure_stream,
    stored_at,
    stream_seq,
)
from instrumentation import wire
from instrumentation.throttled_log import ThrottledWarning
from store.schema import BUS_EVENTS, HEARTBEATS

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0  # between tries to write signals the store refused

ADVISORY_KINDS = {
    wire.ADVISORY_MAX_DELIVERIES: "max_deliveries",
    wire.ADVISORY_TERMINATED: "terminated",
    wire.ADVISORY_NAKED: "naked",
}
_FIRST_YEAR, _LAST_YEAR = 2000, 2100  # the years a span's start may fall in (span_batch)
_COUNTERS = (
    "received", "processed", "failed", "dead_lettered", "spans_exported", "spans_dropped",
    "in_flight",
)  # fmt: skip


def _lookup(headers: dict[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def heartbeat_row(data: bytes, *, sent_at: dt.datetime) -> dict[str, Any]:
    """A ``heartbeats`` row from a heartbeat message; raises ``ValueError`` if malformed.

    ``sent_at`` stands for a missing ``at``: when JetStream stored the message, the same
    on each delivery of it (the collector's clock made a redelivery a second beat,
    where the ``heartbeats`` view keeps one per instance and ``at``)."""
    beat = json.loads(data)
    if not isinstance(beat, dict) or not beat.get("service"):
        raise ValueError("a heartbeat is a JSON object with at least 'service'")
    if not isinstance(beat["service"], str):
        # stored, it was the Python repr of what was sent: a service no span names
        raise ValueError(f"heartbeat 'service' {json.dumps(beat['service'])} is not a string")
    at = beat.get("at")
    try:
        when = sent_at if at is None else dt.datetime.fromtimestamp(float(at), dt.UTC)
    except (OverflowError, OSError, ValueError, TypeError):
        when = None
    # as for spans: a time outside these years is a unit or clock mistake (0, a
    # negative number), and stored it made the instance's last beat 1970
    if when is None or not (_FIRST_YEAR <= when.year < _LAST_YEAR) or isinstance(at, bool):
        raise ValueError(
            f"heartbeat 'at' {at!r} is not a Unix time in seconds within the years "
            f"{_FIRST_YEAR}-{_LAST_YEAR}"
        )
    row: dict[str, Any] = {
        "service": beat["service"],
        "instance": None if beat.get("instance") is None else str(beat["instance"]),
        "at": when,
        "interval_s": _interval(beat.get("interval_s")),
        # the instance's last beat, as it stopped on purpose (false when it does not say)
        "stopped": beat.get("stopping") is True,
    }
    for counter in _COUNTERS:
        value = beat.get(counter)
        row[counter] = None if value is None else _counter(counter, value)
    return row


def _interval(value: Any) -> float | None:
    """The beat's interval; one that is no positive, finite number of seconds is refused:
    stored, NaN made the instance never silent, and 0 or less always silent."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (OverflowError, ValueError, TypeError):
        seconds = math.nan
    if isinstance(value, bool) or not (0 < seconds < math.inf):
        raise ValueError(f"heartbeat 'interval_s' {value!r} is not a positive number of seconds")
    return seconds


def _counter(name: str, value: Any) -> int:
    try:
        number = int(value)
    except (OverflowError, ValueError, TypeError):
        number = None
    if number is None or not fits_int64(number):
        raise ValueError(f"heartbeat counter {name!r} {value!r} is not a 64-bit integer")
    if number < 0:
        # counters are totals since the instance started: one that went negative
        # would read as the process having restarted
        raise ValueError(f"heartbeat counter {name!r} {value!r} is negative")
    return number


async def bus_event_row(js: JetStreamContext, subject: str, data: bytes) -> dict[str, Any]:
    """A ``bus_events`` row from an advisory, with the original message's identity."""
    advisory = json.loads(data)
    kind = next(
        (name for prefix, name in ADVISORY_KINDS.items() if subject.startswith(prefix)), "other"
    )
    at = _parse_time(advisory.get("timestamp"))
    row: dict[str, Any] = {
        "kind": kind,
        "stream": advisory.get("stream"),
        "consumer": advisory.get("consumer"),
        "stream_seq": advisory.get("stream_seq"),
        "deliveries": advisory.get("deliveries"),
        "reason": advisory.get("reason"),
        "at": at,
        "raw": data.decode("utf-8", "replace"),
    }
    if row["stream"] and row["stream_seq"]:
        try:
            original = await js.get_msg(row["stream"], seq=int(row["stream_seq"]))
        except (nats.errors.Error, TimeoutError) as e:
            log.debug("original of %s advisory not readable: %s", kind, e)
        else:
            headers = original.headers or {}
            row["subject"] = original.subject
            row["message_id"] = _lookup(headers, wire.MSG_ID)
            row["workflow_id"] = _lookup(headers, wire.WORKFLOW_ID)
            parts = (_lookup(headers, wire.TRACEPARENT) or "").split("-")
            if len(parts) == 4:
                row["trace_id"], row["span_id"] = parts[1], parts[2]
    return row


def _parse_time(text: Any) -> dt.datetime:
    if isinstance(text, str):
        with contextlib.suppress(ValueError):
            # nats-server writes RFC 3339 with nanoseconds; Python reads microseconds
            head, _, rest = text.partition(".")
            digits = "".join(c for c in rest if c.isdigit())
            zone = rest[len(digits) :] if rest else text[len(head) :]
            parsed = dt.datetime.fromisoformat(f"{head}.{digits[:6] or '0'}{zone}")
            return parsed.astimezone(dt.UTC)
    return dt.datetime.now(dt.UTC)


class SignalIngest:
    """Consumes heartbeats and advisories into segments."""

    def __init__(
        self,
        *,
        nc: Client,
        js: JetStreamContext,
        writer: SegmentWriter,
        flush_interval: float,
        replicas: int,
        max_age: float,
        max_bytes: int = 1 << 30,
    ) -> None:
        self.nc = nc
        self.js = js
        self.writer = writer
        self.flush_interval = flush_interval
        self.replicas = replicas
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.counts = {"bus_events": 0, "heartbeats": 0, "rejected": 0}
        # a full disk refuses every write alike: said once, then every 10 min
        self._full_disk = FullDiskNotice(
            root=writer.layout.root,
            doing="the signal writer",
            retry_every=MAX_BACKOFF_S,
            keeping="they stay unacknowledged in JetStream meanwhile, so nothing is lost",
        )

    async def prepare(self, *, timeout: float = 5.0) -> None:
        """Create the signals stream before the collector says it is ready: a heartbeat
        sent right after (by a service started with it) reached no stream, and was
        lost. A failure is left to ``run``, which says it and falls back."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._create_stream(), timeout)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._create_stream()
        except SubjectsTakenError as e:
            log.warning(
                "cannot create stream %s (%s): reading heartbeats and advisories with plain "
                "subscriptions, so those sent while the collector is down are missed",
                SIGNALS_STREAM, e,
            )  # fmt: skip
            await self._run_subscribed(stop)
            return
        await self._run_durable(stop)

    async def _create_stream(self) -> bool:
        return await ensure_stream(
            self.js, name=SIGNALS_STREAM, subjects=SIGNAL_SUBJECTS, replicas=self.replicas,
            max_age=self.max_age, max_bytes=self.max_bytes,
        )  # fmt: skip

    async def _run_durable(self, stop: asyncio.Event) -> None:
        config = consumer_config(durable=SIGNALS_DURABLE, ack_wait=30.0, max_ack_pending=10_000)
        config.filter_subjects = list(SIGNAL_SUBJECTS)
        pull = DurablePull(nc=self.nc, js=self.js, stream=SIGNALS_STREAM, config=config)
        await pull.ensure_consumer()
        warn = ThrottledWarning(10.0, logger=log)
        try:
            while not stop.is_set():
                try:
                    # a segment a fetch: a trickle of heartbeats is gathered for
                    # the flush interval, not written one segment a heartbeat
                    messages = await pull.fetch(
                        batch=500, timeout=max(0.05, min(1.0, self.flush_interval)), gather=True
                    )
                except ConsumerGoneError as e:
                    warn("fetching signals failed; creating the stream and consumer again", e)
                    await pull.create_again(
                        create_stream=self._create_stream,
                        held="heartbeats and advisories",
                        warn=warn,
                    )
                    continue
                except (nats.errors.Error, TimeoutError) as e:
                    warn("fetching signals failed; retrying", e)
                    await asyncio.sleep(0.5)
                    continue
                warn.reset()
                if await self._store(messages, stop=stop):
                    for msg in messages:
                        with contextlib.suppress(nats.errors.Error):
                            await msg.ack()
        finally:
            await pull.close()

    async def _run_subscribed(self, stop: asyncio.Event) -> None:
        received: list[Msg] = []

        async def collect(msg: Msg) -> None:
            received.append(msg)

        subs = [await self.nc.subscribe(s, cb=collect) for s in SIGNAL_SUBJECTS]
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(1.0, self.flush_interval))
                batch, received[:] = list(received), []
                if batch:
                    await self._store(batch, stop=stop)
        finally:
            for sub in subs:
                with contextlib.suppress(nats.errors.Error):
                    await sub.unsubscribe()

    async def _store(self, messages: list[Msg], *, stop: asyncio.Event) -> bool:
        """Write the messages' rows durably; False if stopping before it could."""
        events: list[pa.Table] = []
        beats: list[pa.Table] = []
        received_at = dt.datetime.now(dt.UTC)
        rejects = Rejects(received_at=received_at)
        for msg in messages:
            # each message becomes its own Arrow row here, so one that does not fit the
            # schema (a number past int64, a year past 9999) is rejected alone
            try:
                if msg.subject.startswith(wire.HEARTBEAT_SUBJECT_PREFIX):
                    row = heartbeat_row(msg.data, sent_at=stored_at(msg) or received_at)
                    beat = {**row, "received_at": received_at}
                    beats.append(pa.Table.from_pylist([beat], HEARTBEATS))
                else:
                    row = await bus_event_row(self.js, msg.subject, msg.data)
                    events.append(pa.Table.from_pylist([row], BUS_EVENTS))
            except Exception as e:  # whatever it is, it costs this message only
                reason = str(e)[:200] or type(e).__name__
                rejects.add(
                    reason=f"unreadable signal ({type(e).__name__}): {reason}",
                    raw=msg.data,
                    source=msg.subject,
                    stream_seq=stream_seq(msg),
                )
        tables = {
            "bus_events": pa.concat_tables(events) if events else None,
            "heartbeats": pa.concat_tables(beats) if beats else None,
            "rejected": rejects.table() if rejects.rows else None,
        }
        backoff = 0.2
        while True:
            try:
                for name, table in list(tables.items()):
                    if table is not None:
                        await asyncio.to_thread(self.writer.write, name, table)
                        self.counts[name] += table.num_rows
                        tables[name] = None
                self._full_disk.passed()
                return True
            except (OSError, duckdb.Error) as e:
                if (path := full_disk_path(e)) is not None:
                    self._full_disk.failed(step="heartbeats and advisories", path=path)
                else:
                    log.error(
                        "cannot write signals to the store at %s: %s; not acking, retrying "
                        "in %.1fs", self.writer.layout.root, e, backoff,
                    )  # fmt: skip
            if stop.is_set():
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(MAX_BACKOFF_S, backoff * 2)
