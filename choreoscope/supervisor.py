"""Supervising child processes: start in order, watch, stop in reverse.

`choreoscope demo` and `choreoscope up` run each component (nats-server, collector,
correlator, sample pipelines, dashboard) as its own process, so one crash is
contained and reported, never hidden:

    with Supervisor(log_dir=data / "logs") as supervisor:
        supervisor.start(ChildSpec(name="collector", argv=[...], ready=port_accepts(...)))
        crashed = supervisor.watch(stop=stop_event, duration=30.0)
    # leaving the block stops every child: SIGTERM in reverse order, SIGKILL after a grace

Each child runs in its own session, so a Ctrl-C in the terminal reaches only the
supervisor, which then stops the children in the right order. On Linux each child
also gets SIGTERM if the supervisor itself dies, so nothing is left orphaned.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from instrumentation.errors import ChoreoscopeError

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 20
RUN_HEADER = "=== choreoscope run"  # starts the line that opens each run in a child's log


class ChildFailedError(ChoreoscopeError):
    """A child process exited while starting, or never became ready."""

    def __init__(self, *, name: str, reason: str, log_file: Path, log_tail: str) -> None:
        self.name = name
        self.reason = reason
        self.log_file = log_file
        self.log_tail = log_tail
        super().__init__(
            f"{name} {reason}; its log is {log_file}, which ends with:\n{indent(log_tail)}"
        )


@dataclass(frozen=True)
class ChildSpec:
    """How to run one component. ``ready`` is polled until it returns True."""

    name: str
    argv: Sequence[str]
    describe: str = ""
    env: Mapping[str, str] | None = None
    ready: Callable[[], bool] | None = None
    ready_timeout: float = 30.0


@dataclass(frozen=True)
class ChildExit:
    """A child that exited on its own: its exit code and the end of its log."""

    name: str
    returncode: int
    log_file: Path
    log_tail: str

    def explain(self) -> str:
        how = describe_returncode(self.returncode)
        return f"{self.name} exited ({how}); its log is {self.log_file}, ending with:\n" + indent(
            self.log_tail
        )


@dataclass
class _Running:
    spec: ChildSpec
    proc: subprocess.Popen[bytes]
    log_file: Path
    log_start: int  # where this run's lines begin: the log is appended to, run after run
    reported: bool = field(default=False)


class Supervisor:
    """Starts children in order and stops them in reverse; reports any that exits."""

    def __init__(self, *, log_dir: Path, grace: float = 10.0, poll_interval: float = 0.2) -> None:
        self.log_dir = Path(log_dir)
        self.grace = grace
        self.poll_interval = poll_interval
        self._children: list[_Running] = []
        self._stopping = False
        self._forced = threading.Event()
        self.killed_by_force: list[str] = []

    @property
    def names(self) -> list[str]:
        return [c.spec.name for c in self._children]

    def pid(self, name: str) -> int:
        return self._child(name).proc.pid

    def log_file(self, name: str) -> Path:
        return self._child(name).log_file

    @property
    def stopping(self) -> bool:
        """Whether a stop of children has begun."""
        return self._stopping

    @property
    def forced(self) -> bool:
        return self._forced.is_set()

    def force_stop(self) -> None:
        """Kill what remains at once (SIGKILL), without waiting out the grace: for a
        second Ctrl-C while stopping. Only sets an event, so a signal handler may call it."""
        self._forced.set()

    def start(self, spec: ChildSpec, *, stop: threading.Event | None = None) -> bool:
        """Spawn ``spec`` and wait until it is ready; raise ``ChildFailedError`` if not.
        False when ``stop`` is set first: the child is left to ``stop_all``."""
        if spec.name in self.names:
            raise ValueError(f"a child named {spec.name!r} already runs")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.log_dir / f"{spec.name}.log"
        env = {**os.environ, **(spec.env or {})}
        with open(log_file, "ab") as out:
            log_start = out.tell()
            proc = subprocess.Popen(
                list(spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_ChildSetup(spec.argv, after_earlier_runs=log_start > 0),
            )
        child = _Running(spec=spec, proc=proc, log_file=log_file, log_start=log_start)
        self._children.append(child)
        log.debug("started %s (pid %d): %s", spec.name, proc.pid, " ".join(spec.argv))
        return self._wait_ready(child, stop=stop or threading.Event())

    def exited(self) -> list[ChildExit]:
        """Children that exited on their own since the last call (each reported once)."""
        found = []
        for child in self._children:
            code = child.proc.poll()
            if code is not None and not child.reported:
                child.reported = True
                found.append(self._exit_of(child))
        return found

    def watch(self, *, stop: threading.Event, duration: float | None = None) -> list[ChildExit]:
        """Block until ``stop`` is set, ``duration`` seconds pass or a child exits.

        Returns the children that exited on their own (empty when stopped or timed out).
        """
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.is_set():
            crashed = self.exited()
            if crashed:
                return crashed
            if deadline is not None and time.monotonic() >= deadline:
                return []
            stop.wait(self.poll_interval)
        return []

    def stop(self, name: str) -> ChildExit | None:
        """Stop one child: SIGTERM to its process group, SIGKILL after the grace."""
        child = self._child(name)
        self._stopping = True
        self._terminate(child)
        self._children.remove(child)
        if child.reported:
            return None
        return self._exit_of(child)

    def stop_all(self) -> None:
        """Stop every child, last started first."""
        self._stopping = self._stopping or bool(self._children)
        for child in reversed(list(self._children)):
            self._terminate(child)
        self._children.clear()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def _child(self, name: str) -> _Running:
        for child in self._children:
            if child.spec.name == name:
                return child
        raise KeyError(f"no child named {name!r}; running: {', '.join(self.names) or 'none'}")

    def _wait_ready(self, child: _Running, *, stop: threading.Event) -> bool:
        spec = child.spec
        deadline = time.monotonic() + spec.ready_timeout
        while not stop.is_set():
            if child.proc.poll() is not None:
                child.reported = True
                code = describe_returncode(child.proc.returncode)
                raise ChildFailedError(
                    name=spec.name,
                    reason=f"exited while starting ({code})",
                    log_file=child.log_file,
                    log_tail=tail(child.log_file, start=child.log_start),
                )
            if spec.ready is None or _safe_ready(spec.ready):
                return True
            if time.monotonic() >= deadline:
                self._terminate(child)
                child.reported = True
                raise ChildFailedError(
                    name=spec.name,
                    reason=f"was not ready after {spec.ready_timeout:g} s, so it was stopped",
                    log_file=child.log_file,
                    log_tail=tail(child.log_file, start=child.log_start),
                )
            stop.wait(self.poll_interval)
        return False

    def _terminate(self, child: _Running) -> None:
        """SIGTERM to the component alone, then SIGKILL to what is left of its group.

        Its own workers are the component's to stop: the collector finishes its decode
        workers' tasks, then shuts its pool down. A SIGTERM to the whole group killed
        them mid-task, and the collector logged an ERROR on every clean stop. What it
        leaves behind, or all of it past the grace, is killed (systemd's
        ``KillMode=mixed``)."""
        proc = child.proc
        if proc.poll() is not None:
            return
        log.debug("stopping %s (pid %d)", child.spec.name, proc.pid)
        if not self._forced.is_set():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        if self._forced.is_set() or not _exited_unreaped(
            proc, timeout=self.grace, forced=self._forced
        ):
            if self._forced.is_set():
                self.killed_by_force.append(child.spec.name)
            else:
                log.warning(
                    "%s did not stop within %g s of SIGTERM; killing it",
                    child.spec.name,
                    self.grace,
                )
        # the component is not reaped yet, so its pid (its group's id) cannot be reused
        _signal_group(proc, signal.SIGKILL)
        proc.wait()

    def _exit_of(self, child: _Running) -> ChildExit:
        return ChildExit(
            name=child.spec.name,
            returncode=child.proc.returncode,
            log_file=child.log_file,
            log_tail=tail(child.log_file, start=child.log_start),
        )


def describe_returncode(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def tail(path: Path, *, lines: int = LOG_TAIL_LINES, start: int = 0) -> str:
    """The last ``lines`` lines of a log file from offset ``start`` (where this run
    began: earlier runs' lines are not this crash's), or a note that it is empty."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(start, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except OSError as e:
        return f"(log unreadable: {e})"
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else "(the log is empty)"


def indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def port_accepts(host: str, port: int) -> Callable[[], bool]:
    """A readiness check: something accepts TCP connections on ``host:port``."""

    def check() -> bool:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        return False

    return check


def http_ok(url: str) -> Callable[[], bool]:
    """A readiness check: ``url`` answers 200."""

    def check() -> bool:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status == 200
        return False

    return check


def _safe_ready(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:
        log.debug("readiness check failed", exc_info=True)
        return False


def _exited_unreaped(
    proc: subprocess.Popen[bytes], *, timeout: float, forced: threading.Event
) -> bool:
    """Wait up to ``timeout`` (or until ``forced``) for ``proc`` to exit, leaving it a
    zombie (not reaped)."""
    deadline = time.monotonic() + timeout
    while True:
        if not hasattr(os, "waitid"):  # macOS before Python 3.13: wait, reaping it
            try:
                proc.wait(timeout=0.02)
                return True
            except subprocess.TimeoutExpired:
                pass
        else:
            try:
                if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                    return True
            except ChildProcessError:  # reaped already
                return True
            time.sleep(0.02)
        if forced.is_set() or time.monotonic() >= deadline:
            return False


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # Each child leads its own process group, so its own children (a server's
    # workers) get the signal too.
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.send_signal(sig)


class _ChildSetup:
    """Run in the child before exec: open this run in the log with a header line (time,
    pid, command), the child's own first write, so nothing of it comes before; on Linux,
    also have it get SIGTERM when the supervisor dies."""

    def __init__(self, argv: Sequence[str], *, after_earlier_runs: bool) -> None:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        command = shlex.join(argv).replace("\r", "\\r").replace("\n", "\\n")
        gap = "\n" if after_earlier_runs else ""  # also ends a line a killed run left open
        self._before_pid = f"{gap}{RUN_HEADER} started {now}, pid ".encode()
        self._after_pid = f": {command}\n".encode()

    def __call__(self) -> None:
        with contextlib.suppress(OSError):  # a full disk: the run goes on unheaded
            os.write(1, self._before_pid + str(os.getpid()).encode() + self._after_pid)
        if sys.platform == "linux":
            _die_with_parent()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the supervisor dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
