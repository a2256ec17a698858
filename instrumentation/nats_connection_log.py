"""What a long-lived NATS connection tells its owner's log.

NATS out of reach (not up yet, a wrong URL, a restart): once when it begins, naming
the server URL(s) and what to check, then at most every ``REPEAT_EVERY_S`` with how
many attempts failed meanwhile, never a traceback; when it ends, how long it lasted.
nats-py reports a disconnection again after each failed reconnect attempt, and an
error per attempt: they all belong to the one outage. Other errors (a permission
missing, a slow consumer) are throttled warnings of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Final

from nats import errors as nats_errors

from instrumentation.errors import reach_nats_advice
from instrumentation.throttled_log import Outage, ThrottledWarning

REPEAT_EVERY_S: Final = 30.0
"""How often a lasting outage is told again."""

# what nats-py reports when no server answers (OSError: refused, no such host,
# timed out) or when the connection it had is lost
_UNREACHABLE = (OSError, nats_errors.NoServersError)
_LOST = (nats_errors.StaleConnectionError,)  # and UnexpectedEOF: disconnected() tells it


def server_urls(servers: str | Sequence[str]) -> str:
    """The URLs of a ``servers`` option, as a user wrote them, comma-separated."""
    return servers if isinstance(servers, str) else ", ".join(servers)


class NatsConnectionLog:
    """nats-py's ``error_cb``, ``disconnected_cb`` and ``reconnected_cb`` for one
    connection, named ``who`` in the log; ``option`` says where its ``servers`` came
    from (``"the Agent's nats_url="``), so that a wrong one can be corrected."""

    def __init__(
        self,
        *,
        who: str,
        servers: str | Sequence[str],
        option: str,
        retry_every: float,
        logger: logging.Logger,
        open_: Callable[[], bool],
    ) -> None:
        self._who = who
        self._urls = server_urls(servers)
        self._logger = logger
        self._open = open_  # the connection exists and was not closed by its owner
        self._errors = ThrottledWarning(10, logger=logger)
        self._outage = Outage(REPEAT_EVERY_S, logger=logger)
        self._advice = f"; still trying every {retry_every:g} s: {reach_nats_advice(option=option)}"

    async def error(self, exc: Exception) -> None:
        if isinstance(exc, _LOST):
            return  # the disconnection that follows is the outage's first line
        if isinstance(exc, _UNREACHABLE):
            self._outage.failing(
                f"{self._who} cannot reach NATS at {self._urls}",
                f"{type(exc).__name__}: {exc}",
                then=self._advice,
            )
            return
        self._errors(f"{self._who}: NATS at {self._urls}", exc)

    async def disconnected(self) -> None:
        if self._open() and not self._outage.ongoing:
            self._outage.failing(
                f"{self._who} disconnected from NATS at {self._urls}", "reconnecting"
            )

    async def reconnected(self) -> None:
        lost = self._outage.over()
        after = "" if lost is None else f" after {lost:.1f} s"
        self._logger.info("%s reconnected to NATS%s", self._who, after)

    def connected(self) -> None:
        """The first connect succeeded (after an outage, it says how long it waited)."""
        lost = self._outage.over()
        after = "" if lost is None else f" after {lost:.1f} s of trying"
        self._logger.info("%s connected to %s%s", self._who, self._urls, after)
