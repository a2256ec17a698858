"""A first connect that fails within seconds, and says why.

With nats-py's defaults a first connect to a wrong or unreachable URL tries 60 times,
2 s apart (about two minutes) and then raises a bare ``NoServersError``. A client
connecting for the first time is usually a wrong URL or a server not started: a few
short attempts tell it as well, and ``NatsUnreachableError`` names the URL and what
to check. Options the caller passed win over these. Once connected, the options set
here are back to nats-py's defaults, which its reconnection reads.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import nats
from nats import errors as nats_errors
from nats.aio.client import Client

from instrumentation.errors import NatsUnreachableError
from instrumentation.nats_connection_log import server_urls

ErrorCallback = Callable[[Exception], Awaitable[None]]

FIRST_CONNECT: Final[Mapping[str, Any]] = {
    "max_reconnect_attempts": 2,  # three attempts in all
    "reconnect_time_wait": 0.5,
    "connect_timeout": 2,
}
"""How a first connect tries, unless the caller's options say otherwise."""

# no server answered: refused, no such host, timed out (nats-py's TimeoutError is
# asyncio's too), or none left to try
_UNANSWERED: Final = (OSError, TimeoutError, nats_errors.NoServersError)

_NATS_PY_DEFAULTS: Final = {
    name: parameter.default
    for name, parameter in inspect.signature(Client.connect).parameters.items()
    if name in FIRST_CONNECT
}


async def connect_or_explain(
    *,
    servers: str | Sequence[str],
    options: Mapping[str, Any],
    option: str,
    error_cb: ErrorCallback,
) -> Client:
    """``nats.connect(servers, **options)``, briefly; ``NatsUnreachableError`` naming
    ``servers`` and ``option`` (where they came from) if no server answers.

    Errors met while connecting are kept for that message (and passed to the
    caller's own ``error_cb``, if ``options`` has one); once connected, every error
    goes to ``error_cb``."""
    first_try = {name: value for name, value in FIRST_CONNECT.items() if name not in options}
    met: list[Exception] = []
    connected = False

    async def on_error(exc: Exception) -> None:
        if connected:
            await error_cb(exc)
            return
        met.append(exc)
        if "error_cb" in options:
            await options["error_cb"](exc)

    try:
        nc = await nats.connect(
            servers if isinstance(servers, str) else list(servers),
            **{**options, **first_try, "error_cb": on_error},
        )
    except (OSError, nats_errors.Error) as exc:
        cause = met[-1] if met and isinstance(exc, nats_errors.NoServersError) else exc
        if not isinstance(cause, _UNANSWERED):
            raise  # a server answered, and refused (credentials, TLS): not "is it running"
        attempts = f", {len(met)} attempts" if len(met) > 1 else ""
        raise NatsUnreachableError(
            url=server_urls(servers),
            reason=f"{type(cause).__name__}: {cause}{attempts}",
            option=option,
        ) from exc
    connected = True
    for name in first_try:  # reconnection is as nats-py's, as before
        nc.options[name] = _NATS_PY_DEFAULTS[name]
    return nc
