"""Alerts: each new anomaly, once, as JSON on ``choreo.alerts.<kind>`` and,
optionally, POSTed to a webhook.

The correlator does not hold a NATS connection itself: the caller passes an async
``publish(subject, payload)`` (nats-py's ``Client.publish`` fits), so this package
stays free of the bus client. A failing webhook is logged and never stops the loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from instrumentation import wire
from instrumentation.errors import ConfigurationError

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[Any]]


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


class Alerter:
    """Sends alerts to NATS and/or a webhook; returns the ids it delivered."""

    def __init__(
        self,
        *,
        publish: Publish | None,
        dashboard_url: str,
        webhook: str | None = None,
        webhook_timeout_s: float = 5.0,
    ) -> None:
        if webhook is not None and urllib.parse.urlparse(webhook).scheme not in ("http", "https"):
            raise ConfigurationError(
                setting="webhook", value=webhook, fix="give an http:// or https:// URL"
            )
        self.publish = publish
        self.dashboard_url = dashboard_url
        self.webhook = webhook
        self.webhook_timeout_s = webhook_timeout_s

    async def send(self, anomalies: Sequence[dict[str, Any]]) -> list[str]:
        sent: list[str] = []
        for anomaly in anomalies:
            payload = alert_payload(anomaly, dashboard_url=self.dashboard_url)
            body = json.dumps(payload).encode()
            if self.publish is not None:
                try:
                    await self.publish(alert_subject(anomaly["kind"]), body)
                except Exception as e:  # the bus is down: retried on the next tick
                    log.warning("could not publish alert %s: %s", anomaly["anomaly_id"], e)
                    break
            if self.webhook is not None:
                await asyncio.to_thread(self._post, body)
            sent.append(anomaly["anomaly_id"])
        return sent

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(
            self.webhook or "",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.webhook_timeout_s) as response:
                response.read()
        except (urllib.error.URLError, OSError) as e:
            log.warning("webhook %s did not take the alert: %s", self.webhook, e)
