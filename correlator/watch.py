"""``correlate --watch``: keep the findings fresh and alert on what is new.

One cold pass, then a tick every ``interval_s``: fold in the spans that arrived,
re-judge the workflows they touch and the open ones, write the findings, and send
each anomaly not alerted yet (the ledger persists what was sent, so a restart
does not repeat it). The passes run in a worker thread so the event loop stays
free for the bus client.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from correlator.alerts import Alerter
from correlator.damaged_findings import set_aside_damaged_findings
from correlator.declared_choreography import Choreography
from correlator.engine import Correlator
from correlator.last_pass import EVERY_S, note_judging, stop_judging, write_last_pass
from correlator.memory_budget import MemoryBudget, MemoryBudgetError
from correlator.sole_writer import sole_writer
from correlator.thresholds import Thresholds
from store import StoreLayout, read_retrying
from store.quarantine import damaged_file_error
from store.rereading import file_changed_under

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 30.0  # how often a long cold pass says it still works
RETRY_MAX_S = 60.0  # the longest wait before a failed cold pass is tried again
REPEATS_LOGGED_EVERY_S = 60.0  # a tick's failure that comes again is logged this often


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def correlate_once(
    *,
    data_dir: str | Path,
    thresholds: Thresholds | None = None,
    choreography: Choreography | None = None,
    now: dt.datetime | None = None,
    memory: MemoryBudget | None = None,
) -> Correlator:
    """Compute the findings from what is stored now and write them; returns the
    (closed) correlator, whose ``ledger`` and ``model`` hold the results. Raises
    ``FindingsTakenError`` while another correlator writes the store's findings."""
    layout = StoreLayout.at(data_dir)
    # before the lock, which creates findings/: a mistyped --data is refused, not
    # left behind as a directory that looks like a store
    layout.check_version()
    with sole_writer(layout, role="correlate --once"):
        return _correlate_once(
            data_dir=data_dir, thresholds=thresholds, choreography=choreography, now=now,
            memory=memory,
        )  # fmt: skip


def _correlate_once(
    *,
    data_dir: str | Path,
    thresholds: Thresholds | None,
    choreography: Choreography | None,
    now: dt.datetime | None,
    memory: MemoryBudget | None,
) -> Correlator:
    set_aside_damaged_findings(StoreLayout.at(data_dir))
    engine = Correlator(
        data_dir=data_dir, thresholds=thresholds, choreography=choreography, memory=memory
    )
    now = now or utc_now()
    try:
        with _telling_progress(
            f"judging the spans stored in {engine.layout.root}", layout=engine.layout
        ):
            # no tick follows (hold); read again if compaction retired a listed segment
            read_retrying(lambda: engine.cold_pass(now=now, hold=False))
        with engine.within_budget():  # the statuses are written by a DuckDB query
            engine.write_findings()
    except BaseException:
        stop_judging(engine.layout)  # nothing judges now: say so at once
        raise
    finally:
        engine.close()
    write_last_pass(
        engine.layout,
        as_of=now,
        watching=False,
        judged_with=engine.judged_with,
        min_deadline_s=engine.thresholds.min_deadline_s,
        choreography=engine.choreography.source if engine.choreography else None,
    )
    return engine


@contextlib.contextmanager
def _telling_progress(doing: str, *, layout: StoreLayout) -> Iterator[None]:
    """Log that ``doing`` (a cold pass) began, every ``PROGRESS_EVERY_S`` that it
    still goes on (a first pass over a week of spans takes minutes), and how long it
    took; and tell readers meanwhile (last_pass.note_judging)."""
    started = time.monotonic()
    since = utc_now()
    done = threading.Event()

    def tell() -> None:
        while not done.wait(PROGRESS_EVERY_S):
            log.info("still %s (%.0fs so far)", doing, time.monotonic() - started)
            note_judging(layout, since=since)

    log.info("%s", doing)
    note_judging(layout, since=since)
    teller = threading.Thread(target=tell, name="choreoscope-progress", daemon=True)
    teller.start()
    try:
        yield
    finally:
        done.set()
        teller.join()
    log.info("done %s in %.1fs", doing, time.monotonic() - started)


async def wait_for_store(layout: StoreLayout, *, stop: asyncio.Event, poll_s: float) -> bool:
    """Wait until a store exists at ``layout`` (the collector creates it)."""
    if layout.exists():
        return True
    log.info("waiting for a store at %s: start `choreoscope collect` to create it", layout.root)
    while not layout.exists():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=poll_s)
        if stop.is_set():
            return False
    return True


async def watch(
    *,
    data_dir: str | Path,
    alerter: Alerter,
    stop: asyncio.Event,
    thresholds: Thresholds | None = None,
    choreography: Choreography | None = None,
    interval_s: float = 1.0,
    clock: Callable[[], dt.datetime] = utc_now,
    keep_s: float = 900.0,
    ready: asyncio.Event | None = None,
    memory: MemoryBudget | None = None,
) -> None:
    """Run until ``stop`` is set; set ``ready`` once the cold pass is done and alerted."""
    layout = StoreLayout.at(data_dir)
    if not await wait_for_store(layout, stop=stop, poll_s=interval_s):
        return
    # one correlator at a time writes a store's findings (a second is refused)
    with sole_writer(layout, role="correlate --watch"):
        set_aside_damaged_findings(layout)
        engine = Correlator(
            data_dir=layout.root,
            thresholds=thresholds,
            choreography=choreography,
            keep_s=keep_s,
            memory=memory,
        )
        judged = False
        try:
            started = time.perf_counter()
            log.info("judging the spans stored in %s before watching", layout.root)
            failures = 0
            since = utc_now()  # readers see how long it has tried, not its latest attempt
            while not await _cold_pass(engine, clock, stop=stop, since=since, failures=failures):
                # a pass that failed for want of memory or disk fails again at once: wait
                # longer each time, up to a minute
                failures += 1
                if not stop.is_set():
                    note_judging(layout, since=since, failures=failures)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        stop.wait(), timeout=min(interval_s * 2 ** (failures - 1), RETRY_MAX_S)
                    )
                if stop.is_set():
                    return
            # what the webhook had not taken when the last watcher stopped, before
            # what is new: NATS took those, the ledger says which the webhook did not
            alerter.post_again(engine.ledger.webhook_owed())
            written = await _alert_and_write(engine, alerter, clock, failing=False)
            judged, recorded = True, _record_pass(engine, clock, watching=True)
            log.info(
                "ready: correlating %s every %gs (cold pass %.2fs, %d anomalies known); "
                "alerts on choreo.alerts.>",
                layout.root, interval_s, time.perf_counter() - started, len(engine.ledger),
            )  # fmt: skip
            if ready is not None:
                ready.set()
            tick_failures = _FailureLog()
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval_s)
                if stop.is_set():
                    break
                if await _pass(engine.tick, clock, tick_failures):
                    written = await _alert_and_write(engine, alerter, clock, failing=not written)
                    if time.monotonic() - recorded >= EVERY_S:
                        recorded = _record_pass(engine, clock, watching=True)
        finally:
            await alerter.close()
            engine.ledger.mark_webhook_settled(alerter.webhook_settled(), at=clock())
            try:  # before the first judgement there is nothing of this run to write
                error = _write_error(engine) if judged else None
            finally:
                engine.close()
            if judged:  # the statuses stop at its last pass
                _record_pass(engine, clock, watching=False)
            else:  # stopped (or failed) during its cold pass: it judges no more
                stop_judging(layout)
            if error is None:
                log.info("correlator stopped; findings written to %s", layout.findings)
            else:
                log.error(
                    "correlator stopped without writing its last findings to %s (%s): alerts "
                    "sent since they were last written may be sent again by the next watcher",
                    layout.findings, error,
                )  # fmt: skip


def _record_pass(engine: Correlator, clock: Callable[[], dt.datetime], *, watching: bool) -> float:
    write_last_pass(
        engine.layout,
        as_of=clock(),
        watching=watching,
        judged_with=engine.judged_with,
        min_deadline_s=engine.thresholds.min_deadline_s,
        choreography=engine.choreography.source if engine.choreography else None,
    )
    return time.monotonic()


async def _cold_pass(
    engine: Correlator,
    clock: Callable[[], dt.datetime],
    *,
    stop: asyncio.Event,
    since: dt.datetime,
    failures: int,
) -> bool:
    """The cold pass, which reads every span stored: on a large store it takes minutes,
    so say every ``PROGRESS_EVERY_S`` that it still works (in the log, and to readers:
    last_pass.note_judging: judging ``since``, after ``failures`` attempts that
    failed), and when told to stop, interrupt it rather than finish it (nothing was
    alerted yet: the next watcher does it again)."""
    started = time.monotonic()
    note_judging(engine.layout, since=since, failures=failures)
    judging = asyncio.ensure_future(_pass(engine.cold_pass, clock))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not judging.done():
            await asyncio.wait(
                {judging, stopping}, timeout=PROGRESS_EVERY_S, return_when=asyncio.FIRST_COMPLETED
            )
            if judging.done():
                break
            if stop.is_set():
                # again until it ends: an interrupt between two statements is lost
                engine.con.interrupt()
                await asyncio.wait({judging}, timeout=0.05)
            else:
                log.info(
                    "still judging the stored spans (%.0fs so far); ready when done",
                    time.monotonic() - started,
                )  # fmt: skip
                note_judging(engine.layout, since=since, failures=failures)
    finally:
        stopping.cancel()
    return judging.result()


class _FailureLog:
    """Logs a pass's failure, but one that comes again at every tick (a memory
    budget too small for the ticks) only once a minute, with how often it came."""

    def __init__(self) -> None:
        self._said: dict[str, float] = {}  # failure → when last logged
        self._since: dict[str, int] = {}  # failure → times since

    def failed(self, level: int, e: Exception) -> None:
        key = f"{type(e).__name__}: {e}"
        now = time.monotonic()
        if now - self._said.get(key, -REPEATS_LOGGED_EVERY_S) < REPEATS_LOGGED_EVERY_S:
            self._since[key] = self._since.get(key, 0) + 1
            return
        repeated = self._since.pop(key, 0)
        again = f" (failed so {repeated} more times since it was last logged)" if repeated else ""
        log.log(level, "correlator pass failed, retrying on the next tick: %s%s", e, again)
        self._said[key] = now


async def _pass(
    run: Callable[..., object],
    clock: Callable[[], dt.datetime],
    failures: _FailureLog | None = None,
) -> bool:
    """Run one pass in a worker thread. A store being compacted under us can make
    a read fail (a segment replaced between listing and reading): log it and let
    the next tick try again, rather than stop watching. ``failures``: where a tick's
    failures are told (a cold pass's are each told: it waits longer each time)."""
    failures = failures or _FailureLog()
    try:
        await asyncio.to_thread(run, now=clock())
    except duckdb.InterruptException:  # stopping: interrupted by _cold_pass
        return False
    except duckdb.Error as e:
        # a damaged segment is named, with what to do (the collector's maintenance
        # sets it aside; until then every pass fails on it)
        damaged = damaged_file_error(e, whole=False) if file_changed_under(e) else None
        failures.failed(logging.ERROR if damaged else logging.WARNING, damaged or e)
        return False
    except MemoryBudgetError as e:
        failures.failed(logging.ERROR, e)
        return False
    return True


async def _alert_and_write(
    engine: Correlator, alerter: Alerter, clock: Callable[[], dt.datetime], *, failing: bool
) -> bool:
    """Alert what is new, then write the findings; whether they were written."""
    pending = [a for a in engine.ledger.unalerted() if a["resolved_at"] is None]
    if pending:
        sent = await alerter.send(pending)
        engine.ledger.mark_alerted(sent, at=clock(), webhook=alerter.webhook is not None)
        for anomaly in pending:
            if anomaly["anomaly_id"] in sent:
                log.info("alert %s: %s", anomaly["kind"], anomaly["detail"])
    engine.ledger.mark_webhook_settled(alerter.webhook_settled(), at=clock())
    return await asyncio.to_thread(_write, engine, failing=failing)


def _write(engine: Correlator, *, failing: bool) -> bool:
    """Write the findings; whether they were. A store that refuses them (a full disk,
    a folder gone) is logged, not raised: they stay in memory and the next tick writes
    them again. ``failing`` says the last write failed (logged once, not every tick)."""
    error = _write_error(engine)
    if error is not None and not failing:
        log.error(
            "could not write the findings to %s (%s): still watching and alerting, and "
            "writing them again each tick; until that works, a restarted watcher would "
            "alert again what was alerted meanwhile",
            engine.layout.findings, error,
        )  # fmt: skip
    elif error is None and failing:
        log.info("findings written to %s again", engine.layout.findings)
    return error is None


def _write_error(engine: Correlator) -> Exception | None:
    try:
        engine.write_findings()
    except (OSError, duckdb.Error, pa.ArrowException) as e:
        return e
    return None
