"""Run a stack of components in the foreground until Ctrl-C, a duration, or a crash."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from choreoscope.supervisor import ChildExit, ChildFailedError, ChildSpec, Supervisor

STOPPED = 0
CRASHED = 1


@contextlib.contextmanager
def stop_on_signals(supervisor: Supervisor) -> Iterator[threading.Event]:
    """An event set by SIGINT (Ctrl-C) or SIGTERM. One more while the children stop
    (a second Ctrl-C, say) kills what remains at once: a child ignoring SIGTERM held
    the stop for the whole grace. The previous handlers come back after."""
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        if stop.is_set() or supervisor.stopping:
            supervisor.force_stop()
        stop.set()

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, on_signal)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def start_all(
    supervisor: Supervisor, specs: Sequence[ChildSpec], *, stop: threading.Event
) -> int | None:
    """Start ``specs`` in order; None once all are ready, else the exit code, having
    said why: ``CRASHED`` if one fails, ``STOPPED`` if Ctrl-C or SIGTERM came first (it
    is not waited out: a dashboard can take a minute to be ready)."""
    for spec in specs:
        if not stop.is_set():
            print(f"starting {spec.name} ...", flush=True)
            try:
                if supervisor.start(spec, stop=stop):
                    continue
            except ChildFailedError as e:
                print(f"choreoscope: {e}", flush=True)
                return CRASHED
        print(f"choreoscope: stopped on request before {spec.name} was ready", flush=True)
        return STOPPED
    return None


def print_table(specs: Sequence[ChildSpec], *, log_dir: Path, title: str) -> None:
    width = max(len(s.name) for s in specs)
    print(f"\n{title}", flush=True)
    for spec in specs:
        print(f"  {spec.name:<{width}}  {spec.describe}")
    print(f"  logs: {log_dir}/<name>.log\n", flush=True)


def report_crashes(crashed: Sequence[ChildExit]) -> None:
    for child in crashed:
        print(f"choreoscope: {child.explain()}", flush=True)


def stop_everything(supervisor: Supervisor, *, first: Sequence[str] = ()) -> None:
    """Stop every component, ``first`` ones first, then the last started first,
    saying so."""
    leading = [name for name in first if name in supervisor.names]
    rest = [name for name in reversed(supervisor.names) if name not in leading]
    if leading or rest:
        print(
            f"stopping {', '.join([*leading, *rest])} ... (Ctrl-C again kills them at once)",
            flush=True,
        )
    for name in leading:
        supervisor.stop(name)
    supervisor.stop_all()
    if supervisor.killed_by_force:
        print(
            f"choreoscope: stop forced by a second Ctrl-C or SIGTERM: killed "
            f"{', '.join(supervisor.killed_by_force)} at once (SIGKILL), without letting "
            "them finish",
            flush=True,
        )
    print("everything stopped", flush=True)


def watch_until_done(
    supervisor: Supervisor,
    *,
    stop: threading.Event,
    duration: float | None,
    on_tick: Callable[[], None] | None = None,
    tick: float = 5.0,
) -> int:
    """Wait for Ctrl-C, the end of ``duration`` or a crash; ``CRASHED`` for a crash."""
    remaining = duration
    while True:
        step = tick if remaining is None else min(tick, remaining)
        crashed = supervisor.watch(stop=stop, duration=step)
        if crashed:
            report_crashes(crashed)
            return CRASHED
        if stop.is_set():
            return STOPPED
        if on_tick is not None:
            on_tick()
        if remaining is not None:
            remaining -= step
            if remaining <= 0:
                return STOPPED
