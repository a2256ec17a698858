"""A warning for a failure that repeats: logged once, then at most every ``interval``
seconds with how many were not logged meanwhile. A server that is down fails twice
a second; its log should not. An ``Outage`` also says how long it lasted."""

from __future__ import annotations

import logging
import time


class ThrottledWarning:
    """Logs ``message: error`` to ``logger`` at most every ``interval`` seconds."""

    def __init__(self, interval: float, *, logger: logging.Logger) -> None:
        self.interval = interval
        self.logger = logger
        self._last = -float("inf")
        self._suppressed = 0
        self.last_error: Exception | None = None

    def __call__(self, message: str, error: Exception | str, *, then: str = "") -> None:
        """Log ``message: error`` (and how many were not logged) followed by ``then``,
        what to do about it."""
        if isinstance(error, Exception):
            self.last_error = error
        now = time.monotonic()
        if now - self._last < self.interval:
            self._suppressed += 1
            return
        again = f" (and {self._suppressed} more times)" if self._suppressed else ""
        self.logger.warning("%s: %s%s%s", message, error, again, then)
        self._last, self._suppressed = now, 0

    def reset(self) -> None:
        """The failure is over: the next one is logged at once."""
        self._last, self._suppressed = -float("inf"), 0


class Outage:
    """A failure that lasts (NATS away, publishes failing): told when it begins, then
    at most every ``interval`` seconds while it lasts; ``over`` says how long it was."""

    def __init__(self, interval: float, *, logger: logging.Logger) -> None:
        self._warn = ThrottledWarning(interval, logger=logger)
        self.since: float | None = None  # monotonic time it began; None: no outage

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failing(self, message: str, error: Exception | str, *, then: str = "") -> None:
        self.since = self.since or time.monotonic()
        self._warn(message, error, then=then)

    def over(self) -> float | None:
        """It ended: the seconds it lasted (None: there was none). The next failure is
        told at once."""
        since, self.since = self.since, None
        self._warn.reset()
        return None if since is None else time.monotonic() - since
