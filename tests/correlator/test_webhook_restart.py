"""Alerts a webhook had not taken when a watcher stopped reach it from the next
watcher, against a real nats-server and a real local HTTP webhook: the webhook gets
each alert once, NATS subscribers nothing again, and a webhook given to a watcher for
the first time gets nothing alerted before it."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import nats
import pyarrow.parquet as pq
import pytest

from choreoscope.nats_server import EmbeddedNats
from correlator import connect
from correlator.alerts import Alerter, Publish
from correlator.findings_files import current_file, new_generation
from correlator.thresholds import Thresholds
from correlator.watch import watch
from store import StoreLayout
from tests.correlator.pipelines import history, up_to_parsed
from tests.correlator.span_shapes import SpanLog, at


class Webhook:
    """A local webhook answering ``status`` (503: down) to each POST; ``posts`` lists
    the anomaly id of every POST it received, ``taken`` of those it answered 2xx."""

    def __init__(self) -> None:
        self.status = 204
        self.posts: list[str] = []
        self.taken: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                anomaly = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = hook.status
                hook.posts.append(anomaly["anomaly_id"])
                if status < 300:
                    hook.taken.append(anomaly["anomaly_id"])
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    threading.Thread(target=hook.server.serve_forever, daemon=True).start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def _store_with_dropped_messages(layout: StoreLayout, *, count: int) -> None:
    log = SpanLog()
    ours = history(log)
    for n in range(count):
        up_to_parsed(ours, f"wf-drop-{n}", start=100 + n)
    log.write(layout)


async def _run_watch(layout: StoreLayout, alerter: Alerter, *, seconds: float) -> None:
    """A watcher that runs ``seconds`` after its cold pass, then stops."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        watch(
            data_dir=layout.root, alerter=alerter, stop=stop,
            thresholds=Thresholds(min_deadline_s=5), interval_s=0.05,
            clock=lambda: at(150), ready=ready,
        )
    )  # fmt: skip
    await asyncio.wait_for(ready.wait(), timeout=60)
    await asyncio.sleep(seconds)
    stop.set()
    await task


def _owed_to_the_webhook(layout: StoreLayout) -> int:
    """How many anomalies the ``anomalies`` view lists as alerted and not yet taken
    by the webhook."""
    con = connect(layout.root)
    try:
        query = "SELECT count(*) FROM anomalies WHERE alerted_at IS NOT NULL AND webhook_at IS NULL"
        return con.execute(query).fetchone()[0]
    finally:
        con.close()


def _alerter(publish, *, webhook: str | None) -> Alerter:
    # a new Alerter per watcher, as each `correlate --watch` process makes its own
    return Alerter(
        publish=publish, dashboard_url="http://127.0.0.1:8501", webhook=webhook,
        webhook_timeout_s=1.0, webhook_retry_s=(0.05,),
    )  # fmt: skip


async def test_alerts_a_webhook_down_at_stop_had_not_taken_reach_it_from_the_next_watcher(
    store_layout: StoreLayout,
    nats_server: EmbeddedNats,
    webhook: Webhook,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _store_with_dropped_messages(store_layout, count=3)
    nc, on_nats, publish = await _alerts_on_nats(nats_server)

    webhook.status = 503  # down while the anomalies are found
    with caplog.at_level(logging.WARNING, logger="correlator.alerts"):
        await _run_watch(store_layout, _alerter(publish, webhook=webhook.url), seconds=0.3)
    assert "stopping with 3 alert(s) not taken" in caplog.text
    assert len(on_nats) == 3 and webhook.taken == []
    assert _owed_to_the_webhook(store_layout) == 3

    webhook.status = 204  # back up, and a new watcher started
    await _run_watch(store_layout, _alerter(publish, webhook=webhook.url), seconds=0.5)
    assert sorted(webhook.taken) == sorted(on_nats)  # each alert reached it once
    assert _owed_to_the_webhook(store_layout) == 0

    # and a third watcher posts none of them again: the webhook took them
    await _run_watch(store_layout, _alerter(publish, webhook=webhook.url), seconds=0.5)
    await nc.flush()
    await nc.close()
    assert sorted(webhook.posts[-3:]) == sorted(on_nats) and len(webhook.taken) == 3
    assert len(on_nats) == 3  # NATS subscribers got nothing twice


async def test_an_alert_the_webhook_refused_for_good_is_not_posted_again_after_a_restart(
    store_layout: StoreLayout, webhook: Webhook
) -> None:
    _store_with_dropped_messages(store_layout, count=1)
    webhook.status = 400  # a payload it does not take: asking again changes nothing
    await _run_watch(store_layout, _alerter(None, webhook=webhook.url), seconds=0.5)
    assert len(webhook.posts) == 2  # the first try and its one retry

    webhook.status = 204
    await _run_watch(store_layout, _alerter(None, webhook=webhook.url), seconds=0.5)
    assert len(webhook.posts) == 2 and webhook.taken == []


def _as_written_before_webhook_at(layout: StoreLayout) -> None:
    """Write the anomalies' newest generation again as a correlator from before the
    `webhook_at` column wrote it."""
    for name in ("anomalies", "anomalies_recent"):
        table = pq.read_table(current_file(layout, name)).drop_columns(["webhook_at"])
        with new_generation(layout, name) as tmp:
            pq.write_table(table, tmp)


@pytest.mark.parametrize("written_before_the_column", [False, True])
async def test_a_first_watcher_with_a_webhook_posts_nothing_alerted_before_it(
    store_layout: StoreLayout,
    nats_server: EmbeddedNats,
    webhook: Webhook,
    written_before_the_column: bool,
) -> None:
    # alerted on NATS by a watcher without a webhook (or by a correlator from before
    # the column): a webhook added, or an upgrade, must not post every old anomaly
    _store_with_dropped_messages(store_layout, count=2)
    nc, on_nats, publish = await _alerts_on_nats(nats_server)

    await _run_watch(store_layout, _alerter(publish, webhook=None), seconds=0.2)
    if written_before_the_column:
        _as_written_before_webhook_at(store_layout)
        # the view binds on files without the column; their rows read null there
        # until a correlator of this version rewrites them (the next watcher does)
        assert _owed_to_the_webhook(store_layout) == 2
    await _run_watch(store_layout, _alerter(publish, webhook=webhook.url), seconds=0.5)
    await nc.close()

    assert len(on_nats) == 2  # they were alerted, once
    assert webhook.posts == []


async def _alerts_on_nats(nats_server: EmbeddedNats) -> tuple[Any, list[str], Publish]:
    """A connection, the ids of the alerts it receives on ``choreo.alerts.>``, and the
    ``publish`` a watcher alerts through on it."""
    nc = await nats.connect(nats_server.url)
    on_nats: list[str] = []

    async def on_alert(msg) -> None:
        on_nats.append(json.loads(msg.data)["anomaly_id"])

    await nc.subscribe("choreo.alerts.>", cb=on_alert)

    async def publish(subject: str, payload: bytes, *, msg_id: str) -> None:
        await nc.publish(subject, payload)
        await nc.flush()

    return nc, on_nats, publish
