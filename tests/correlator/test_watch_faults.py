"""correlate --watch when things go wrong around it: a store it cannot write, NATS
down while it alerts, a webhook that redirects, a findings file that is garbage."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import nats
import pytest

from choreoscope.commands.correlate import bus_publisher
from choreoscope.nats_server import EmbeddedNats
from correlator.alerts import Alerter
from correlator.engine import Correlator
from correlator.findings import read_findings
from correlator.findings_files import current_file, table_folder
from correlator.last_pass import LastPass, read_last_pass
from correlator.memory_budget import MemoryBudgetError
from correlator.thresholds import Thresholds
from correlator.watch import _FailureLog, _pass, watch
from instrumentation.nats_shutdown import close_connection
from store import StoreLayout
from tests.correlator.pipelines import healthy_run, history, up_to_parsed
from tests.correlator.span_shapes import SpanLog, at
from tests.damaged_files import cut_short


class Watcher:
    """``watch`` running in a task, with a fixed clock and fast ticks."""

    def __init__(self, layout: StoreLayout, alerter: Alerter) -> None:
        self.stop, self.ready = asyncio.Event(), asyncio.Event()
        self.task = asyncio.create_task(
            watch(
                data_dir=layout.root, alerter=alerter, stop=self.stop,
                thresholds=Thresholds(min_deadline_s=5), interval_s=0.05,
                clock=lambda: at(150), ready=self.ready,
            )
        )  # fmt: skip

    async def started(self) -> Watcher:
        ready = asyncio.create_task(self.ready.wait())
        await asyncio.wait({ready, self.task}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if self.task.done():
            self.task.result()  # raises what stopped it
        assert self.ready.is_set()
        return self

    async def stopped(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, timeout=60)


def _alerted_on_disk(layout: StoreLayout) -> dict[str, object]:
    """workflow → alerted_at of each anomaly, as a restarted watcher would load them."""
    rows: dict[str, dict] = {}
    for name in ("anomalies", "anomalies_recent"):
        for row in read_findings(layout, name).to_pylist():
            known = rows.get(row["anomaly_id"])
            if known is None or row["revision"] > known["revision"]:
                rows[row["anomaly_id"]] = row
    return {r["workflow_id"]: r["alerted_at"] for r in rows.values() if r["workflow_id"]}


def _block_findings(layout: StoreLayout) -> Path:
    """Make the findings folder unwritable (as a full disk does): a file in its place."""
    away = layout.root / "findings.away"
    layout.findings.rename(away)
    layout.findings.write_text("")
    return away


def _unblock_findings(layout: StoreLayout, away: Path) -> None:
    layout.findings.unlink()
    away.rename(layout.findings)


async def test_a_store_that_refuses_the_findings_does_not_stop_the_watcher(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log)
    up_to_parsed(ours, "wf-drop-0", start=100)
    log.write(store_layout)
    sent: list[str] = []

    async def publish(subject: str, payload: bytes, *, msg_id: str) -> None:
        sent.append(subject)

    alerter = Alerter(publish=publish, dashboard_url="http://127.0.0.1:8501")
    watcher = await Watcher(store_layout, alerter).started()
    away = _block_findings(store_layout)
    up_to_parsed(ours, "wf-drop-1", start=110)  # a new fault while the disk is full
    log.write(store_layout)
    await asyncio.sleep(0.5)
    assert not watcher.task.done(), "the watcher stopped"
    _unblock_findings(store_layout, away)
    await asyncio.sleep(0.5)
    await watcher.stopped()

    # each alerted once, and recorded as alerted once the store took the findings again
    assert sent.count("choreo.alerts.dropped") == 2
    alerted = _alerted_on_disk(store_layout)
    assert alerted["wf-drop-0"] is not None and alerted["wf-drop-1"] is not None


async def _bus_client(url: str) -> Any:
    """A client as the command connects one: it reconnects forever."""

    async def quiet(e: Exception) -> None:
        pass

    return await nats.connect(
        url, max_reconnect_attempts=-1, reconnect_time_wait=0.2, error_cb=quiet
    )


async def _keep_alerts(url: str) -> None:
    """A JetStream stream that keeps every alert, across restarts of the server."""
    nc = await nats.connect(url)
    await nc.jetstream().add_stream(name="ALERTS", subjects=["choreo.alerts.>"])
    await nc.close()


async def _kept_alerts(url: str) -> list[str]:
    """The workflow of each alert the stream kept, in order."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    count = (await js.stream_info("ALERTS")).state.messages
    alerts = [json.loads((await js.get_msg("ALERTS", seq)).data)["workflow"] for seq in
              range(1, count + 1)]  # fmt: skip
    await nc.close()
    return alerts


async def _watch_a_while(layout: StoreLayout, url: str) -> None:
    nc = await _bus_client(url)
    alerter = Alerter(publish=bus_publisher(nc), dashboard_url="http://127.0.0.1:8501")
    await (await Watcher(layout, alerter).started()).stopped()
    await close_connection(nc)


async def test_an_alert_due_while_nats_is_down_is_published_once_it_is_back(
    store_layout: StoreLayout, nats_server: EmbeddedNats
) -> None:
    log = SpanLog()
    ours = history(log)
    up_to_parsed(ours, "wf-drop-0", start=100)
    log.write(store_layout)
    await _keep_alerts(nats_server.url)
    nc = await _bus_client(nats_server.url)
    alerter = Alerter(publish=bus_publisher(nc), dashboard_url="http://127.0.0.1:8501")
    watcher = await Watcher(store_layout, alerter).started()
    nats_server.stop()
    up_to_parsed(ours, "wf-drop-1", start=110)  # found while NATS is down
    log.write(store_layout)
    await asyncio.sleep(0.6)
    await watcher.stopped()  # and the watcher stops before NATS is back
    await close_connection(nc)
    nats_server.start()
    await _watch_a_while(store_layout, nats_server.url)  # the next watcher

    # published by the next watcher, as it never reached NATS (it was marked alerted
    # while nats-py held it for a reconnect that never came, and so was lost)
    assert await _kept_alerts(nats_server.url) == ["wf-drop-0", "wf-drop-1"]


async def test_an_alert_due_while_nats_restarts_is_published_once(
    store_layout: StoreLayout, nats_server: EmbeddedNats
) -> None:
    log = SpanLog()
    ours = history(log)
    log.write(store_layout)
    await _keep_alerts(nats_server.url)
    nc = await _bus_client(nats_server.url)
    alerter = Alerter(publish=bus_publisher(nc), dashboard_url="http://127.0.0.1:8501")
    watcher = await Watcher(store_layout, alerter).started()
    nats_server.stop()
    up_to_parsed(ours, "wf-drop-1", start=110)  # found while NATS is down
    log.write(store_layout)
    await asyncio.sleep(0.4)
    nats_server.start()
    for _ in range(100):  # until the watcher's client is back and has alerted
        await asyncio.sleep(0.1)
        if _ledger_says_alerted(store_layout, "wf-drop-1"):
            break
    await asyncio.sleep(0.5)  # a few more ticks
    await watcher.stopped()
    await close_connection(nc)

    assert await _kept_alerts(nats_server.url) == ["wf-drop-1"]


def _ledger_says_alerted(layout: StoreLayout, workflow: str) -> bool:
    return _alerted_on_disk(layout).get(workflow) is not None


@pytest.fixture
def moved_webhook() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """A webhook moved: /hook answers 301 to /new; each request is recorded."""
    requests: list[tuple[str, str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            requests.append((self.command, self.path, body))
            if self.path == "/hook":
                self.send_response(301)
                self.send_header("Location", "/new")
            else:
                self.send_response(204)
            self.end_headers()

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", requests
    server.shutdown()


async def test_a_webhook_that_redirects_is_reported_not_sent_a_get_without_the_alert(
    store_layout: StoreLayout, moved_webhook, caplog: pytest.LogCaptureFixture
) -> None:
    log = SpanLog()
    up_to_parsed(history(log), "wf-drop-0", start=100)
    log.write(store_layout)
    url, requests = moved_webhook
    alerter = Alerter(
        publish=None, dashboard_url="http://127.0.0.1:8501", webhook=url,
        webhook_retry_s=(0.05,),
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="correlator.alerts"):
        watcher = await Watcher(store_layout, alerter).started()
        await asyncio.sleep(0.5)
        await watcher.stopped()

    # urllib followed the 301 as a GET without a body, and the alert counted as taken
    assert [(method, path) for method, path, _ in requests] == [("POST", "/hook")] * 2
    assert "moved" in caplog.text and "/new" in caplog.text
    # without NATS, giving up does not claim the alert went out there
    assert "refused the dropped alert of workflow wf-drop-0" in caplog.text
    assert "after 2 tries" in caplog.text
    assert "published on" not in caplog.text


async def test_a_watcher_told_to_stop_during_its_cold_pass_stops_without_finishing_it(
    store_layout: StoreLayout, caplog: pytest.LogCaptureFixture
) -> None:
    log = SpanLog()
    ours = history(log)
    for n in range(5000):  # a cold pass of about a second here; minutes on a real store
        healthy_run(ours, f"wf-many-{n}", start=10 + n / 100)
    up_to_parsed(ours, "wf-drop-0", start=100)
    log.write(store_layout)
    alerted: list[str] = []

    async def publish(subject: str, payload: bytes, *, msg_id: str) -> None:
        alerted.append(subject)

    alerter = Alerter(publish=publish, dashboard_url="http://127.0.0.1:8501")
    with caplog.at_level(logging.INFO, logger="correlator.watch"):
        watcher = Watcher(store_layout, alerter)
        await asyncio.sleep(0.2)  # SIGTERM, while it judges the store
        await watcher.stopped()

    # it finished the cold pass first, alerting (minutes, on a large store: long
    # enough for a supervisor to kill it)
    assert not watcher.ready.is_set() and alerted == []
    assert "judging the spans stored" in caplog.text
    assert "correlator stopped" in caplog.text and "failed" not in caplog.text


async def test_a_damaged_status_file_is_set_aside_and_written_afresh_not_a_refusal_to_start(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    up_to_parsed(history(log), "wf-drop-0", start=100)
    log.write(store_layout)
    alerter = Alerter(publish=None, dashboard_url="http://127.0.0.1:8501")
    await (await Watcher(store_layout, alerter).started()).stopped()
    status = current_file(store_layout, "workflow_status")
    damaged = status.read_bytes()[:100]  # cut short by a disk problem
    status.write_bytes(damaged)

    # it refused to start: "the store file .../workflow_status.parquet cannot be read"
    await (await Watcher(store_layout, alerter).started()).stopped()

    statuses = read_findings(store_layout, "workflow_status").to_pylist()
    assert "wf-drop-0" in {s["workflow_id"] for s in statuses}
    (aside,) = (store_layout.root / "quarantine" / "findings").iterdir()
    assert aside.read_bytes() == damaged


def test_findings_a_killed_write_left_half_done_are_cleared_at_start(
    store_layout: StoreLayout,
) -> None:
    Correlator(data_dir=store_layout.root).close()  # the findings folder exists
    abandoned = table_folder(store_layout, "anomalies") / ".000000000007-0a1b.parquet.4242.tmp"
    abandoned.write_bytes(b"PAR1 half of it")
    two_hours_ago = time.time() - 7200
    os.utime(abandoned, (two_hours_ago, two_hours_ago))

    Correlator(data_dir=store_layout.root).close()

    assert not abandoned.exists()


async def test_a_tick_that_fails_the_same_way_each_second_is_logged_once_a_minute(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def tick(*, now: object) -> None:
        raise duckdb.IOException("IO Error: could not read segment (disk unplugged)")

    failures = _FailureLog()
    for _ in range(5):  # five ticks, a second apart
        assert not await _pass(tick, lambda: at(150), failures)
    told = [r.getMessage() for r in caplog.records if "pass failed" in r.getMessage()]
    assert len(told) == 1 and "disk unplugged" in told[0]

    monkeypatch.setattr(
        sys.modules["correlator.watch"], "REPEATS_LOGGED_EVERY_S", 0.0
    )  # a minute later
    assert not await _pass(tick, lambda: at(150), failures)
    told = [r.getMessage() for r in caplog.records if "pass failed" in r.getMessage()]
    assert len(told) == 2 and "failed so 4 more times since it was last logged" in told[1]


async def test_a_cold_pass_that_keeps_failing_tells_readers_so_not_that_it_judges(
    store_layout: StoreLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    # restarted with too little memory, each attempt fails within seconds: a dashboard
    # must not say "judging for 4 s" for ever, as if the pass had just begun
    log = SpanLog()
    up_to_parsed(history(log), "wf-drop-0", start=100)
    log.write(store_layout)
    alerter = Alerter(publish=None, dashboard_url="http://127.0.0.1:8501")
    await (await Watcher(store_layout, alerter).started()).stopped()
    meanwhile: list[LastPass | None] = []

    def cold_pass(engine: Correlator, **kwargs: object) -> None:
        meanwhile.append(read_last_pass(store_layout))
        raise MemoryBudgetError(limit=2**20, spill=store_layout.root / ".spill", reason="test")

    monkeypatch.setattr(Correlator, "cold_pass", cold_pass)
    watcher = Watcher(store_layout, alerter)
    while len(meanwhile) < 3:
        await asyncio.sleep(0.02)
    await watcher.stopped()

    assert [m.judging_failures for m in meanwhile[:3]] == [0, 1, 2]
    assert len({m.judging_since for m in meanwhile}) == 1  # since its first attempt
    # stopped, it judges no more: readers say so at once, not 90 s later
    assert read_last_pass(store_layout).judging_since is None
    # the notes keep the floor the last pass judged with, which `model` learns with
    assert {m.min_deadline_s for m in meanwhile} == {5.0}
    assert read_last_pass(store_layout).min_deadline_s == 5.0


async def test_an_alert_published_again_after_a_kill_is_kept_once_by_a_stream(
    store_layout: StoreLayout, nats_server: EmbeddedNats
) -> None:
    # a watcher killed after it published an alert and before it wrote its findings
    # publishes it again when restarted: the stream that keeps alerts drops the repeat
    await _keep_alerts(nats_server.url)
    anomaly = {
        "anomaly_id": "a1b2c3", "kind": "dropped", "workflow_id": "wf-drop-0",
        "detail": "recruit.cv.parsed was published and no scorer picked it up",
    }  # fmt: skip
    for _ in range(2):  # the killed watcher, then the restarted one
        nc = await _bus_client(nats_server.url)
        alerter = Alerter(publish=bus_publisher(nc), dashboard_url="http://127.0.0.1:8501")
        assert await alerter.send([anomaly]) == ["a1b2c3"]
        await close_connection(nc)

    assert await _kept_alerts(nats_server.url) == ["wf-drop-0"]


async def test_a_watcher_names_a_damaged_segment_and_what_to_do(
    store_layout: StoreLayout, caplog: pytest.LogCaptureFixture
) -> None:
    # its views are bound on first use, so opening the store no longer reads a
    # segment: the pass that reads the damaged one must name it
    caplog.set_level(logging.WARNING, logger="correlator")
    log = SpanLog()
    history(log)
    log.write(store_layout)
    (segment,) = store_layout.root.glob("spans/**/[!_]*.parquet")
    cut_short(segment)  # as a crash of the disk can
    watcher = Watcher(store_layout, Alerter(publish=None, dashboard_url="http://127.0.0.1:8501"))
    for _ in range(300):
        await asyncio.sleep(0.1)
        if "quarantine" in caplog.text:
            break
    await watcher.stopped()

    assert str(segment) in caplog.text
    assert "quarantine" in caplog.text
