"""The options a choreoscope component passes to ``nats.connect``: its own
defaults, overridden by those the user gave (``nats_options=``); and a connect
that can be given up (``connect_unless``).

The user's options win, whatever they name (``servers`` included, for a cluster),
and a name ``nats.connect`` does not take is refused when the component is made,
not when it first connects (the exporter connects on its own thread, where a
``TypeError`` could only be logged and retried forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Coroutine, Mapping
from typing import Any, Final

import nats
from nats.aio.client import Client

from instrumentation.errors import ConfigurationError

_ACCEPTED = frozenset(inspect.signature(Client.connect).parameters) - {"self"}

RECONNECTING: Final[Mapping[str, Any]] = {
    "max_reconnect_attempts": -1,  # forever: an agent outlives a NATS restart
    "reconnect_time_wait": 0.5,
    "connect_timeout": 2,
}
"""The reconnect policy the Agent's and the span exporter's connections start from."""


def connect_options(
    *, setting: str, defaults: Mapping[str, Any], user: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``defaults`` updated with ``user``; ``ConfigurationError`` naming any unknown
    name (and no value: the options hold credentials)."""
    unknown = sorted(set(user or ()) - _ACCEPTED)
    if unknown:
        raise ConfigurationError(
            setting=setting,
            # the names only: the other options' values are credentials (a token, a
            # password, an nkey seed) that an error message must not print
            value=unknown,
            fix=f"nats.connect() takes no {', '.join(map(repr, unknown))}; pass only its "
            "keyword arguments (user_credentials, token, nkeys_seed, tls, ...)",
        )
    return {**defaults, **(user or {})}


async def connect_unless(
    given_up: Coroutine[Any, Any, None], *, options: Mapping[str, Any]
) -> Client:
    """``nats.connect(**options)``, unless ``given_up`` completes first: then
    ``ConnectionError``. With ``max_reconnect_attempts=-1`` nats-py retries an
    unreachable server for ever, and a shutdown must still be able to stop waiting."""
    connecting = asyncio.ensure_future(nats.connect(**options))
    giving_up = asyncio.ensure_future(given_up)
    await asyncio.wait({connecting, giving_up}, return_when=asyncio.FIRST_COMPLETED)
    giving_up.cancel()
    if not connecting.done():
        connecting.cancel()
        with contextlib.suppress(BaseException):
            await connecting
        raise ConnectionError("stopped before NATS became reachable")
    return connecting.result()
