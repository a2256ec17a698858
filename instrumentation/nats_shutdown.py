"""Closing a nats-py connection so that nothing of it is left running.

nats-py's ``Client.close()`` first writes whatever is still pending (an UNSUB, a
last heartbeat) to the socket, and only then stops the subscriptions' tasks and
closes the socket. When NATS has gone away, that write raises ``Connection lost``
and the close stops half way: the connection reports itself closed, yet every
subscription's task stays pending forever and the socket stays open. asyncio then
logs "Task was destroyed but it is pending!" for each of them when they are
garbage collected, long after the agent stopped. ``close_connection`` finishes
what nats-py left undone.

nats-py's ``Client.drain()`` gathers its subscriptions' drains in one future;
cancelled while a subscription still works through its messages, it cancels that
future and returns without reading its outcome, so asyncio logs
"_GatheringFuture exception was never retrieved". ``drain_connection`` reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)


async def close_connection(nc: Any, *, flush_timeout: float = 2.0) -> None:
    """Flush (when connected) and close ``nc``; never raises but for cancellation."""
    if nc.is_closed:
        _stop_what_close_left(nc)
        return
    if nc.is_connected:
        with contextlib.suppress(Exception):
            await nc.flush(timeout=flush_timeout)
    try:
        await nc.close()
    except asyncio.CancelledError:
        _stop_what_close_left(nc)
        raise
    except Exception as exc:  # NATS gone: nats-py stopped closing half way
        log.debug("NATS connection closed with %s: %s", type(exc).__name__, exc)
    _stop_what_close_left(nc)


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Close a loop a thread of ours ran, as ``asyncio.run`` does: cancel the tasks
    still on it (a connection's, whose close was cut short) and let them end first, or
    asyncio reports each as "Task was destroyed but it is pending!"."""
    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


def _stop_what_close_left(nc: Any) -> None:
    """Stop the subscription tasks and close the socket that an interrupted
    ``Client.close()`` left behind (nats-py has no public call for it; these are
    the steps its ``_close`` did not reach)."""
    subscriptions = getattr(nc, "_subs", None)
    if subscriptions:
        for sub in list(subscriptions.values()):
            with contextlib.suppress(Exception):
                sub._stop_processing()
        subscriptions.clear()
    transport = getattr(nc, "_transport", None)
    if transport is not None:
        with contextlib.suppress(Exception):
            transport.close()


async def drain_connection(nc: Any) -> None:
    """``nc.drain()``; when cancelled, nats-py still closes the connection, and the
    cancellation reaches the caller instead of being swallowed by nats-py."""
    draining = asyncio.ensure_future(nc.drain())
    await asyncio.sleep(0)  # it has started: its gathering future exists
    frame = draining.get_coro().cr_frame  # type: ignore[union-attr]
    gathering = frame.f_locals.get("drain_is_done") if frame is not None else None
    if isinstance(gathering, asyncio.Future):
        gathering.add_done_callback(_read_outcome)
    try:
        await asyncio.shield(draining)
    except asyncio.CancelledError:
        draining.cancel()  # nats-py stops waiting for the subscriptions and closes
        with contextlib.suppress(BaseException):
            await draining
        raise


def _read_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # read, so asyncio does not report it as never retrieved
