"""correlate --watch against a real nats-server: each new anomaly is published once
on choreo.alerts.<kind> as JSON (and POSTed to a webhook); a restart does not
re-alert; the command logs a ready line and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import nats
import pytest

from choreoscope.nats_server import EmbeddedNats
from correlator.alerts import Alerter
from correlator.last_pass import read_last_pass
from correlator.thresholds import Thresholds
from correlator.watch import watch
from store import StoreLayout
from tests.correlator.pipelines import PARSED, history, up_to_parsed
from tests.correlator.span_shapes import SpanLog, at


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def _store_with_a_dropped_message(layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log)
    up_to_parsed(ours, "wf-drop", start=100)
    log.write(layout)


async def _run_watch(layout: StoreLayout, alerter: Alerter, *, seconds: float) -> None:
    """Watch for ``seconds`` after the cold pass (a stop during it interrupts it)."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        watch(
            data_dir=layout.root,
            alerter=alerter,
            stop=stop,
            thresholds=Thresholds(min_deadline_s=5),
            interval_s=0.05,
            clock=lambda: at(150),
            ready=ready,
        )
    )
    await asyncio.wait_for(ready.wait(), timeout=60)
    await asyncio.sleep(seconds)
    stop.set()
    await task


async def test_new_anomaly_is_alerted_once_on_nats_and_webhook_and_not_after_restart(
    store_layout: StoreLayout, nats_server: EmbeddedNats, webhook: tuple[str, list[dict]]
) -> None:
    _store_with_a_dropped_message(store_layout)
    url, posted = webhook
    nc = await nats.connect(nats_server.url)
    alerts: list[tuple[str, dict]] = []

    async def on_alert(msg) -> None:
        alerts.append((msg.subject, json.loads(msg.data)))

    await nc.subscribe("choreo.alerts.>", cb=on_alert)

    async def publish(subject: str, payload: bytes, *, msg_id: str) -> None:
        await nc.publish(subject, payload)

    alerter = Alerter(publish=publish, dashboard_url="http://127.0.0.1:8501", webhook=url)
    await _run_watch(store_layout, alerter, seconds=0.6)
    await nc.flush()
    await _run_watch(store_layout, alerter, seconds=0.6)  # a restart
    await nc.flush()
    await nc.close()

    workflow_alerts = [(s, a) for s, a in alerts if a["workflow"] == "wf-drop"]
    assert [s for s, _ in workflow_alerts] == ["choreo.alerts.dropped"]
    (_, alert) = workflow_alerts[0]
    assert alert["kind"] == "dropped" and alert["step"] == PARSED
    assert alert["explanation"].startswith("stalled at `scorer`:")
    assert alert["link"] == "http://127.0.0.1:8501/?workflow=wf-drop"
    assert [a["anomaly_id"] for a in posted] == [a["anomaly_id"] for _, a in alerts]


@pytest.fixture
def held_webhook() -> Iterator[tuple[str, list[str], threading.Event, list[int]]]:
    """A webhook that answers 503 to its first ``failures[0]`` POSTs, then holds each
    POST until ``release`` is set and takes it (204); ``taken`` lists the anomaly ids
    it took."""
    taken: list[str] = []
    release = threading.Event()
    failures = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if failures[0] > 0:
                failures[0] -= 1
                self.send_response(503)
                self.end_headers()
                return
            release.wait(timeout=60)
            taken.append(json.loads(body)["anomaly_id"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", taken, release, failures
    release.set()
    server.shutdown()


def _store_with_dropped_messages(layout: StoreLayout, *, count: int) -> None:
    log = SpanLog()
    ours = history(log)
    for n in range(count):
        up_to_parsed(ours, f"wf-drop-{n}", start=100 + n)
    log.write(layout)


async def test_a_webhook_that_does_not_answer_holds_up_neither_detection_nor_nats_alerts(
    store_layout: StoreLayout, nats_server: EmbeddedNats, held_webhook
) -> None:
    _store_with_dropped_messages(store_layout, count=4)
    url, taken, release, _ = held_webhook
    nc = await nats.connect(nats_server.url)
    alerted: list[str] = []

    async def on_alert(msg) -> None:
        alerted.append(json.loads(msg.data)["anomaly_id"])

    await nc.subscribe("choreo.alerts.>", cb=on_alert)

    async def publish(subject: str, payload: bytes, *, msg_id: str) -> None:
        await nc.publish(subject, payload)

    # each POST would wait out a 30 s timeout: sent one after another in the loop,
    # four of them held the cold pass's alerts, and every tick, for two minutes
    alerter = Alerter(
        publish=publish, dashboard_url="http://127.0.0.1:8501", webhook=url, webhook_timeout_s=30
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        watch(
            data_dir=store_layout.root, alerter=alerter, stop=stop,
            thresholds=Thresholds(min_deadline_s=5), interval_s=0.05,
            clock=lambda: at(150), ready=ready,
        )
    )  # fmt: skip
    await asyncio.wait_for(ready.wait(), timeout=20)
    await nc.flush()
    on_nats_while_held = len(alerted)
    release.set()  # the webhook answers again
    stop.set()
    await task
    await nc.close()

    assert on_nats_while_held == 4
    assert sorted(taken) == sorted(alerted)  # and the webhook got each, once


async def test_an_alert_the_webhook_refused_is_posted_again(
    store_layout: StoreLayout, held_webhook
) -> None:
    _store_with_dropped_messages(store_layout, count=1)
    url, taken, release, failures = held_webhook
    release.set()
    failures[0] = 2  # a webhook restarting: 503, 503, then it takes it
    alerter = Alerter(
        publish=None, dashboard_url="http://127.0.0.1:8501", webhook=url,
        webhook_retry_s=(0.05, 0.05, 0.05),
    )  # fmt: skip
    await _run_watch(store_layout, alerter, seconds=1.0)

    assert len(taken) == 1 and failures[0] == 0


async def test_an_alert_is_not_lost_while_the_webhook_is_down_longer_than_its_retries(
    store_layout: StoreLayout, held_webhook, caplog: pytest.LogCaptureFixture
) -> None:
    # the webhook answered 503 past the last retry (36 s by default): the alert was
    # given up on, and the next one tried, and given up on, for as long as it was down
    _store_with_dropped_messages(store_layout, count=2)
    url, taken, release, failures = held_webhook
    release.set()
    failures[0] = 8  # down for four times the retries
    alerter = Alerter(
        publish=None, dashboard_url="http://127.0.0.1:8501", webhook=url,
        webhook_retry_s=(0.05, 0.05),
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="correlator.alerts"):
        await _run_watch(store_layout, alerter, seconds=2.0)

    assert failures[0] == 0 and len(taken) == 2  # each, once, when it came back
    assert "refused" not in caplog.text
    # the log says which alert waits, and that the webhook takes them again
    assert "did not take the dropped alert of workflow wf-drop-" in caplog.text
    assert "1 more waiting" in caplog.text and "takes alerts again" in caplog.text


async def test_an_alert_the_webhook_rejects_is_given_up_on_and_named(
    store_layout: StoreLayout, caplog: pytest.LogCaptureFixture
) -> None:
    # a 400 answers the same to every try: the alerts behind it must not wait forever
    received: list[str] = []

    class Rejecting(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(
                json.loads(self.rfile.read(int(self.headers["Content-Length"])))["workflow"]
            )
            self.send_response(400)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Rejecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _store_with_dropped_messages(store_layout, count=2)
    alerter = Alerter(
        publish=None, dashboard_url="http://127.0.0.1:8501",
        webhook=f"http://127.0.0.1:{server.server_port}/hook", webhook_retry_s=(0.05,),
    )  # fmt: skip
    try:
        with caplog.at_level(logging.INFO, logger="correlator.alerts"):
            await _run_watch(store_layout, alerter, seconds=1.0)
    finally:
        server.shutdown()

    assert sorted(received) == ["wf-drop-0"] * 2 + ["wf-drop-1"] * 2  # two tries each
    assert "refused the dropped alert of workflow wf-drop-0 (anomaly " in caplog.text
    assert "HTTP Error 400" in caplog.text and "after 2 tries" in caplog.text


async def test_a_watcher_records_when_it_last_judged_the_store_and_that_it_stopped(
    store_layout: StoreLayout,
) -> None:
    # the dashboard tells stale statuses by it (dashboard/page_frame.py)
    _store_with_a_dropped_message(store_layout)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        watch(
            data_dir=store_layout.root,
            alerter=Alerter(publish=None, dashboard_url="http://127.0.0.1:8501"),
            stop=stop,
            interval_s=0.05,
            clock=lambda: at(150),
            ready=ready,
        )
    )
    await asyncio.wait_for(ready.wait(), timeout=60)
    running = read_last_pass(store_layout)
    stop.set()
    await task

    assert (running.as_of, running.watching) == (at(150), True)
    stopped = read_last_pass(store_layout)
    assert (stopped.as_of, stopped.watching) == (at(150), False)
    # what it judged with, for the next correlator to resume from (resume.py)
    assert stopped.judged_with == running.judged_with is not None
    # and its deadline floor, which `model` then learns with (the default here)
    assert stopped.min_deadline_s == running.min_deadline_s == Thresholds().min_deadline_s


def test_correlate_watch_command_logs_ready_and_stops_cleanly_on_sigterm(
    store_layout: StoreLayout, nats_server: EmbeddedNats
) -> None:
    _store_with_a_dropped_message(store_layout)
    proc = subprocess.Popen(
        [sys.executable, "-m", "choreoscope.cli", "correlate", "--watch",
         "--data", str(store_layout.root), "--nats", nats_server.url, "--min-deadline", "5s"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "ready:" in line:
                break
        assert any("ready: correlating" in line for line in lines), "".join(lines)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        rest = proc.stderr.read()
        assert "correlator stopped; findings written" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_second_correlator_on_a_store_is_refused_and_named_until_the_first_is_gone(
    store_layout: StoreLayout, nats_server: EmbeddedNats
) -> None:
    # two correlators writing one store's findings took turns: the dashboard showed
    # one then the other, and each new anomaly was alerted twice
    _store_with_a_dropped_message(store_layout)
    command = [
        sys.executable,
        "-m",
        "choreoscope.cli",
        "correlate",
        "--data",
        str(store_layout.root),
        "--nats",
        nats_server.url,
        "--min-deadline",
        "5s",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen([*command, "--watch"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in first.stderr:
            if "ready:" in line:
                break
        second = [
            subprocess.run([*command, mode], capture_output=True, text=True, env=env, timeout=60)
            for mode in ("--once", "--watch")
        ]
        first.kill()  # as a crash would: the kernel lets go of what it held
        first.wait()
        after = subprocess.run(
            [*command, "--once"], capture_output=True, text=True, env=env, timeout=60
        )
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    for refused in second:
        assert refused.returncode == 2, refused.stderr
        assert f"`correlate --watch` (pid {first.pid}" in refused.stderr
        assert "Stop it first" in refused.stderr
    assert after.returncode == 0, after.stderr
    assert "open anomalies" in after.stdout
