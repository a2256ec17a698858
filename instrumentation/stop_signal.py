"""SIGTERM stops a process's running Agents as ``stop()`` does: they drain.

Containers are stopped with SIGTERM (``docker stop``, Kubernetes), whose default
action ends the process at once: a handler mid-step died with it, its spans were
lost, and its message came back only after ``ack_wait``. While an Agent runs on the
main thread's event loop, and nothing else has claimed SIGTERM, the first SIGTERM
asks every Agent running on that loop to stop, drain its in-flight steps (up to
``drain_timeout``) and flush its spans; ``run()`` then returns. A second SIGTERM
ends the process at once, as before. Ctrl-C (SIGINT) already cancels the task
``asyncio.run`` runs, which drains the same way.

A process that handles SIGTERM itself (``loop.add_signal_handler``, or
``signal.signal`` before the Agent runs) keeps its own handler.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

# per event loop whose SIGTERM is ours: the stop() of each Agent running on it
_stoppers: dict[asyncio.AbstractEventLoop, set[Callable[[], None]]] = {}


def stop_on_sigterm(stop: Callable[[], None]) -> None:
    """Call ``stop`` at the first SIGTERM while it is registered (``release``), if
    this is the main thread and SIGTERM is free or already ours."""
    loop = asyncio.get_running_loop()
    if loop not in _stoppers:
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # the process handles it
        try:
            loop.add_signal_handler(signal.SIGTERM, _stop_all, loop)
        except (NotImplementedError, RuntimeError, ValueError):  # not on this platform
            return
        _stoppers[loop] = set()
    _stoppers[loop].add(stop)


def release(stop: Callable[[], None]) -> None:
    """Unregister ``stop``; with the last one, SIGTERM's default action comes back."""
    for loop, stoppers in list(_stoppers.items()):
        stoppers.discard(stop)
        if not stoppers:
            _give_back(loop)


def _stop_all(loop: asyncio.AbstractEventLoop) -> None:
    stoppers = _stoppers.get(loop, set())
    log.info("SIGTERM: stopping %d agent(s) after their in-flight steps", len(stoppers))
    _give_back(loop)  # a second SIGTERM ends the process at once
    for stop in stoppers:
        stop()


def _give_back(loop: asyncio.AbstractEventLoop) -> None:
    if _stoppers.pop(loop, None) is not None and not loop.is_closed():
        loop.remove_signal_handler(signal.SIGTERM)  # back to SIG_DFL
