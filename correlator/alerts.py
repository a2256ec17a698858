"""Alerts: each new anomaly, once, as JSON on ``choreo.alerts.<kind>`` and,
optionally, POSTed to a webhook.

The correlator does not hold a NATS connection itself: the caller passes an async
``publish(subject, payload, msg_id=...)`` that returns once NATS has the alert and raises
otherwise, so this package stays free of the bus client (nats-py's bare
``Client.publish`` does not fit: it returns having only buffered the message while
reconnecting; see ``bus_publisher`` in the command). An anomaly is alerted once NATS
took it; a bus that is down holds it for the next tick. ``msg_id`` is the anomaly's
id, sent as ``Nats-Msg-Id``: an alert published again (by a watcher killed after it
published and before it wrote its findings) is dropped by a JetStream stream that
keeps alerts, within the stream's duplicate window.

The webhook never holds up detection: its POSTs go out in order from a background
task. An alert the webhook could not take for now (no answer, a 5xx, 408 or 429) is
tried again after each of ``webhook_retry_s``, then every last one of them, for as long
as the watcher runs: a webhook down for a minute lost one alert every 36 s, the others
waiting behind it. One it refused (another 4xx, a redirect), which asking again will
not change, is given up on after the last of them, and named in the log. A webhook far
behind keeps the newest ``webhook_backlog`` alerts, and says which it drops.

The alerts the webhook took, or refused for good, are handed back
(``webhook_settled``) for the ledger to record: those it had not taken when the
watcher stopped are still owed, and the next watcher posts them (``post_again``),
to the webhook only, since NATS took them already.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from instrumentation import wire
from instrumentation.errors import ChoreoscopeError, ConfigurationError

log = logging.getLogger(__name__)


class Publish(Protocol):
    def __call__(self, subject: str, payload: bytes, *, msg_id: str) -> Awaitable[Any]: ...


class AlertNotTakenError(ChoreoscopeError):
    """NATS did not confirm an alert: it is held and published again on a later tick."""

    transient = True

    def __init__(self, *, subject: str, reason: str) -> None:
        self.subject = subject
        self.reason = reason
        super().__init__(f"NATS did not take the alert on {subject} ({reason})")


def alert_subject(kind: str) -> str:
    return f"{wire.ALERTS_SUBJECT_PREFIX}{kind}"


def dashboard_link(dashboard_url: str, workflow_id: str | None) -> str | None:
    if not workflow_id:
        return None
    return f"{dashboard_url.rstrip('/')}/?{urllib.parse.urlencode({'workflow': workflow_id})}"


def alert_payload(anomaly: dict[str, Any], *, dashboard_url: str) -> dict[str, Any]:
    """The JSON document of one alert."""
    detected = anomaly.get("detected_at")
    return {
        "anomaly_id": anomaly["anomaly_id"],
        "kind": anomaly["kind"],
        "workflow": anomaly.get("workflow_id"),
        "workflow_type": anomaly.get("workflow_type"),
        "explanation": anomaly["detail"],
        "service": anomaly.get("service"),
        "subject": anomaly.get("subject"),
        "message_id": anomaly.get("message_id"),
        "step": anomaly.get("step"),
        "root_cause": anomaly.get("root_cause"),
        "detected_at": detected.isoformat() if isinstance(detected, dt.datetime) else detected,
        "link": dashboard_link(dashboard_url, anomaly.get("workflow_id")),
    }


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """urllib follows a 301, 302 or 303 answer to a POST with a GET without the body,
    and the alert then counts as taken: a webhook that moved must be told instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx is raised as an HTTPError


class Alerter:
    """Sends alerts to NATS and/or a webhook; ``send`` returns the ids it delivered.
    ``close`` (awaited) gives the webhook's backlog a last chance, then stops."""

    def __init__(
        self,
        *,
        publish: Publish | None,
        dashboard_url: str,
        webhook: str | None = None,
        webhook_timeout_s: float = 5.0,
        webhook_retry_s: Sequence[float] = (1.0, 5.0, 30.0),
        webhook_backlog: int = 1000,
    ) -> None:
        if webhook is not None and urllib.parse.urlparse(webhook).scheme not in ("http", "https"):
            raise ConfigurationError(
                setting="webhook", value=webhook, fix="give an http:// or https:// URL"
            )
        self.publish = publish
        self.dashboard_url = dashboard_url
        self.webhook = webhook
        self.webhook_timeout_s = webhook_timeout_s
        self.webhook_retry_s = tuple(webhook_retry_s)
        self._backlog: collections.deque[_Queued] = collections.deque(maxlen=webhook_backlog)
        self._queued = asyncio.Event()
        self._poster: asyncio.Task[None] | None = None
        self._posting = False  # the first of the backlog is being posted
        self._in_flight = False  # a POST is on the wire (its answer not yet read)
        self._stopping = False  # close() gave up waiting: post nothing new
        self._settled: list[str] = []  # ids the webhook took or refused, not yet handed
        self._held_since: float | None = None  # the bus refused alerts since then
        self._opener = urllib.request.build_opener(_RefuseRedirects)

    async def send(self, anomalies: Sequence[dict[str, Any]]) -> list[str]:
        sent: list[str] = []
        for anomaly in anomalies:
            payload = alert_payload(anomaly, dashboard_url=self.dashboard_url)
            body = json.dumps(payload).encode()
            if self.publish is not None:
                try:
                    await self.publish(
                        alert_subject(anomaly["kind"]), body, msg_id=anomaly["anomaly_id"]
                    )
                except Exception as e:  # the bus is down: retried on the next tick
                    self._held(len(anomalies) - len(sent), e)
                    break
            if self.webhook is not None:
                self._queue(
                    _Queued(anomaly_id=payload["anomaly_id"], body=body, label=_label(payload))
                )
            sent.append(anomaly["anomaly_id"])
        if sent and self._held_since is not None and len(sent) == len(anomalies):
            log.info(
                "NATS takes alerts again (refused for %.0fs); the ones held are published",
                time.monotonic() - self._held_since,
            )  # fmt: skip
            self._held_since = None
        return sent

    def post_again(self, anomalies: Sequence[dict[str, Any]]) -> None:
        """Queue for the webhook alerts NATS took before (a watcher stopped while the
        webhook did not take them): the webhook gets them, NATS nothing again."""
        if self.webhook is None or not anomalies:
            return
        kept = list(anomalies)[-(self._backlog.maxlen or len(anomalies)) :]
        log.info(
            "posting to webhook %s %d alert(s) it had not taken when the last watcher "
            "stopped%s",
            self.webhook, len(kept),
            f" (the newest; {len(anomalies) - len(kept)} older stay owed)"
            if len(kept) < len(anomalies) else "",
        )  # fmt: skip
        for anomaly in kept:
            payload = alert_payload(anomaly, dashboard_url=self.dashboard_url)
            self._queue(
                _Queued(
                    anomaly_id=payload["anomaly_id"],
                    body=json.dumps(payload).encode(),
                    label=_label(payload),
                )
            )

    def webhook_settled(self) -> list[str]:
        """The ids of the alerts the webhook took, or refused for good, since the last
        call: no later watcher owes it them."""
        settled, self._settled = self._settled, []
        return settled

    def _held(self, count: int, error: Exception) -> None:
        """Say once, not every tick, that the bus refuses alerts."""
        if self._held_since is not None:
            return
        self._held_since = time.monotonic()
        log.warning(
            "could not publish alerts (%s): holding %d, published when NATS takes them",
            error, count,
        )  # fmt: skip

    async def close(self, *, drain_s: float | None = None) -> None:
        """Wait up to ``drain_s`` (default: one webhook timeout) for the webhook's
        backlog to go out, then stop posting."""
        if self._poster is None:
            return
        deadline = time.monotonic() + (self.webhook_timeout_s if drain_s is None else drain_s)
        while (self._backlog or self._posting) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # a POST on the wire gets its answer (within its timeout): cut off, one the
        # webhook took would be owed still, and posted again by the next watcher
        self._stopping = True
        while self._in_flight and time.monotonic() < deadline + self.webhook_timeout_s:
            await asyncio.sleep(0.05)
        if self._backlog:
            log.warning(
                "stopping with %d alert(s) not taken by webhook %s (they were published "
                "on choreo.alerts.>; the next watcher posts them to the webhook)",
                len(self._backlog), self.webhook,
            )  # fmt: skip
        self._poster.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._poster
        # the ledger owes them to the webhook: the next watcher queues them again
        self._backlog.clear()
        self._poster, self._posting, self._stopping = None, False, False

    def _queue(self, alert: _Queued) -> None:
        if len(self._backlog) == self._backlog.maxlen:
            log.warning(
                "webhook %s is %d alerts behind: dropping the oldest, %s (it stays in "
                "the anomalies view, owed to the webhook: the next watcher posts it)",
                self.webhook, len(self._backlog), self._backlog[0].label,
            )  # fmt: skip
        self._backlog.append(alert)
        self._queued.set()
        if self._poster is None:
            self._poster = asyncio.create_task(self._post_backlog())

    async def _post_backlog(self) -> None:
        failing_since: float | None = None
        while True:
            if not self._backlog:
                self._queued.clear()
                await self._queued.wait()
            alert = self._backlog[0]
            self._posting = True
            attempt = 0
            while True:
                if self._stopping:
                    return
                attempt += 1
                self._in_flight = True
                try:
                    error = await asyncio.to_thread(self._post, alert.body)
                finally:
                    self._in_flight = False
                if error is None:
                    self._settled.append(alert.anomaly_id)
                    if failing_since is not None:
                        log.info(
                            "webhook %s takes alerts again (it failed for %.0fs); %d more "
                            "to post",
                            self.webhook, time.monotonic() - failing_since,
                            len(self._backlog) - 1,
                        )  # fmt: skip
                        failing_since = None
                    break
                failing_since = failing_since or time.monotonic()
                retries = self.webhook_retry_s
                if not error.transient and attempt > len(retries):
                    log.error(
                        "webhook %s refused %s after %d tries (last: %s); it %sstays in "
                        "the anomalies view",
                        self.webhook, alert.label, attempt, error.reason,
                        "was published on choreo.alerts.> and " if self.publish else "",
                    )  # fmt: skip
                    self._settled.append(alert.anomaly_id)  # asking again changes nothing
                    break
                delay = retries[min(attempt, len(retries)) - 1] if retries else 1.0
                log.warning(
                    "webhook %s did not take %s (%s): trying again in %gs%s",
                    self.webhook, alert.label, error.reason, delay,
                    f", {len(self._backlog) - 1} more waiting" if len(self._backlog) > 1
                    else "",
                )  # fmt: skip
                await asyncio.sleep(delay)
            if self._backlog and self._backlog[0] is alert:
                self._backlog.popleft()
            self._posting = False

    def _post(self, body: bytes) -> _PostError | None:
        """POST one alert; None when the webhook took it, else what went wrong."""
        request = urllib.request.Request(
            self.webhook or "",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with self._opener.open(request, timeout=self.webhook_timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as e:
            if 300 <= e.code < 400:
                moved_to = urllib.parse.urljoin(self.webhook or "", e.headers.get("Location", ""))
                return _PostError(
                    f"HTTP {e.code}: moved to {moved_to}; give that URL as --webhook",
                    transient=False,
                )
            # a server error, a timeout or a rate limit passes; another 4xx (a payload
            # or a path the webhook does not take) answers the same to every try
            return _PostError(str(e), transient=e.code >= 500 or e.code in (408, 429))
        except (urllib.error.URLError, OSError) as e:
            return _PostError(str(e), transient=True)
        return None


@dataclasses.dataclass(frozen=True)
class _Queued:
    """An alert waiting for the webhook: its anomaly, its body, and how the log names
    it."""

    anomaly_id: str
    body: bytes
    label: str


@dataclasses.dataclass(frozen=True)
class _PostError:
    reason: str
    transient: bool


def _label(payload: dict[str, Any]) -> str:
    """``the dropped alert of workflow 3f9c… (anomaly 9f3c…)``: which alert a log line
    is about, so that one given up on can be found in the anomalies view."""
    of = f" of workflow {payload['workflow']}" if payload.get("workflow") else ""
    return f"the {payload['kind']} alert{of} (anomaly {payload['anomaly_id']})"
