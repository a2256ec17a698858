"""What a long-lived NATS connection tells its owner's log: errors, throttled; an
outage once, when it begins (nats-py reports a disconnection again after each failed
reconnect attempt); and, when it ends, how long it lasted."""

from __future__ import annotations

import logging
from collections.abc import Callable

from instrumentation.throttled_log import Outage, ThrottledWarning


class NatsConnectionLog:
    """nats-py's ``error_cb``, ``disconnected_cb`` and ``reconnected_cb`` for one
    connection, named ``who`` in the log."""

    def __init__(
        self, *, who: str, url: str, logger: logging.Logger, open_: Callable[[], bool]
    ) -> None:
        self._who = who
        self._url = url
        self._logger = logger
        self._open = open_  # the connection exists and was not closed by its owner
        self._errors = ThrottledWarning(10, logger=logger)
        self._outage = Outage(float("inf"), logger=logger)

    async def error(self, exc: Exception) -> None:
        self._errors(f"{self._who}: NATS at {self._url} (retrying)", exc)

    async def disconnected(self) -> None:
        if self._open():
            self._outage.failing(f"{self._who} disconnected from NATS", "reconnecting")

    async def reconnected(self) -> None:
        lost = self._outage.over()
        after = "" if lost is None else f" after {lost:.1f} s"
        self._logger.info("%s reconnected to NATS%s", self._who, after)
