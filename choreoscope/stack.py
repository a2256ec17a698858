"""The processes `choreoscope demo` and `choreoscope up` run, as supervisor specs.

Each component is the same `choreoscope` subcommand a user could run by hand, so
what the demo shows is what production runs. NATS credentials reach the children
through ``CHOREOSCOPE_*`` environment variables, never their command lines, so
they do not show in ``ps``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import socket
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from choreoscope.nats_server import free_port, own_server_listens, server_argv
from choreoscope.settings import SETTINGS
from choreoscope.supervisor import ChildSpec, http_ok, port_accepts
from instrumentation.errors import ChoreoscopeError, ConfigurationError

CREDENTIAL_SETTINGS = (
    "creds",
    "nkey",
    "token",
    "user",
    "password",
    "tls_ca",
    "tls_cert",
    "tls_key",
)


@dataclass(frozen=True)
class StackOptions:
    """What every component is told: where the store and the bus are."""

    data: Path
    nats_url: str
    otlp_http: tuple[str, int] | None
    min_deadline: float
    choreography: Path | None
    host: str
    port: int
    log_level: str
    credentials_env: dict[str, str]
    webhook: str | None = None
    public_dashboard_url: str | None = None
    memory_limit: int | None = None  # the correlator's (None: its default)

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _probe_socket() -> socket.socket:
    """A socket to try a port with, as the servers that will bind it do: with
    ``SO_REUSEADDR``, so connections of a stack just stopped (``TIME_WAIT``, a
    minute long) do not read as the port taken, while a listener still does."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return probe


def embedded_nats_port(port: int, *, chosen: bool, host: str = "127.0.0.1") -> int:
    """The port for the embedded nats-server: ``port`` (``--nats-port``, NATS's usual
    4222 by default), so services configured for it reach the embedded server.

    A port the user ``chosen`` (flag or variable) that is taken is refused before
    anything starts. The default taken, a free port is used instead, and said in one
    line: services set up for 4222 would otherwise reach whatever holds it."""
    if chosen:
        ensure_port_free(host, port, flag=SETTINGS["nats_port"].flag)
        return port
    with _probe_socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            pass
        else:
            return port
    fallback = free_port(host)
    print(
        f"choreoscope: port {port} is taken, so the embedded nats-server listens on "
        f"nats://{host}:{fallback} instead: services configured for nats://{host}:{port} "
        f"will not reach it; point them at nats://{host}:{fallback}, or free {port}, or "
        f"choose a port with {SETTINGS['nats_port'].flag} (or {SETTINGS['nats_port'].env})",
        flush=True,
    )
    return fallback


def ensure_port_free(
    host: str,
    port: int,
    *,
    flag: str,
    host_flag: str | None = None,
    taken: str = "",
    settings: bool = True,
) -> None:
    """Fail before starting anything if ``host:port`` is taken, saying which flag moves it
    (``taken`` adds what probably holds it), or if ``host`` is no address to listen on
    here, saying which flag names it (``host_flag``, else ``flag``). With ``settings``,
    the flags are those of ``SETTINGS`` and the message also names their variables."""
    with _probe_socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                holder = f"; {taken}" if taken else ""
                raise ConfigurationError(
                    setting=flag,
                    value=f"{host}:{port}",
                    fix=f"that address is in use ({e.strerror}{holder}); pass {flag} with a "
                    f"free one{_or_variable(flag, settings)}",
                ) from None
            # a host that does not resolve, or is not this machine's: no port frees it
            where = host_flag or flag
            raise ConfigurationError(
                setting=where,
                value=host if host_flag else f"{host}:{port}",
                fix=f"nothing can listen on {host} here ({e.strerror or e}); pass {where} "
                "with an address of this machine, like 127.0.0.1 or 0.0.0.0"
                f"{_or_variable(where, settings)}",
            ) from None


def _or_variable(flag: str, settings: bool) -> str:
    """`` (or set CHOREOSCOPE_PORT)`` for the setting behind ``flag``: the value may
    have come from the environment, where the flag alone would not be looked for."""
    if settings:
        for setting in SETTINGS.values():
            if setting.flag == flag:
                return f" (or set {setting.env})"
    return ""


_DEFAULT_PORTS = {"nats": 4222, "tls": 4222, "ws": 80, "wss": 443}


def ensure_nats_answers(urls: str, *, timeout: float = 3.0) -> None:
    """Fail before starting anything if no server of ``urls`` (comma-separated) accepts a
    connection, saying what to start or which flag to fix."""
    for url in urls.split(","):
        parts = urllib.parse.urlsplit(url.strip())
        host = parts.hostname or "127.0.0.1"
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 4222)
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
            return
    shown = ",".join(_without_credentials(u.strip()) for u in urls.split(","))
    raise ChoreoscopeError(
        f"no NATS server answers at {shown}: start one there (`choreoscope nats --port PORT` "
        "runs one with JetStream), fix --nats, or leave --nats out to have `up` start one"
    )


def _without_credentials(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def credentials_env(args: argparse.Namespace) -> dict[str, str]:
    """The NATS credential settings the user gave, as environment for the children."""
    env = {}
    for name in CREDENTIAL_SETTINGS:
        value = getattr(args, name, None)
        if value is not None:
            env[SETTINGS[name].env] = str(value)
    return env


def choreoscope_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "choreoscope.cli", *args]


def nats_spec(*, data: Path, host: str, port: int) -> ChildSpec:
    """The embedded nats-server, ready once it is ours that listens on the port, as for
    ``EmbeddedNats``: another server there answers connections too."""
    store = data / "nats"
    # only this server writes its ports file here; one a killed server left is removed,
    # or it would read as this one ready
    ports = store / "ports"
    ports.mkdir(parents=True, exist_ok=True)
    for stale in ports.glob("*.ports"):
        stale.unlink(missing_ok=True)
    return ChildSpec(
        name="nats-server",
        argv=server_argv(
            host=host, port=port, store_dir=store, server_name="choreoscope", ports_dir=ports
        ),
        describe=f"nats://{host}:{port}, JetStream in {store}",
        ready=lambda: own_server_listens(ports_dir=ports, host=host, port=port),
    )


def collector_spec(options: StackOptions) -> ChildSpec:
    argv = ["collect", "--nats", options.nats_url, "--data", str(options.data)]
    if options.otlp_http is None:
        argv.append("--no-otlp-http")
        where = "no OTLP/HTTP receiver"
        ready = None
    else:
        host, port = options.otlp_http
        argv += ["--otlp-http", f"{host}:{port}"]
        where = f"OTLP/HTTP receiver on http://{host}:{port}/v1/traces"
        ready = port_accepts(host, port)
    return ChildSpec(
        name="collector",
        argv=choreoscope_command(*argv),
        describe=f"spans from NATS into {options.data}; {where}",
        env=_env(options),
        ready=ready,
    )


def correlator_spec(options: StackOptions) -> ChildSpec:
    argv = [
        "correlate", "--watch",
        "--data", str(options.data),
        "--nats", options.nats_url,
        "--min-deadline", f"{options.min_deadline:g}s",
        "--dashboard-url", options.public_dashboard_url or options.dashboard_url,
    ]  # fmt: skip
    if options.choreography is not None:
        argv += ["--choreography", str(options.choreography)]
    if options.webhook is not None:
        argv += ["--webhook", options.webhook]
    if options.memory_limit is not None:
        argv += ["--memory-limit", str(options.memory_limit)]
    return ChildSpec(
        name="correlator",
        argv=choreoscope_command(*argv),
        describe="findings refreshed every second; alerts on choreo.alerts.>",
        env=_env(options),
    )


def dashboard_spec(options: StackOptions) -> ChildSpec:
    return ChildSpec(
        name="dashboard",
        argv=choreoscope_command(
            "dashboard",
            "--data",
            str(options.data),
            "--host",
            options.host,
            "--port",
            str(options.port),
        ),
        describe=options.dashboard_url,
        env=_env(options),
        ready=http_ok(f"{options.dashboard_url}/_stcore/health"),
        ready_timeout=60.0,
    )


def _env(options: StackOptions) -> dict[str, str]:
    return {SETTINGS["log_level"].env: options.log_level, **options.credentials_env}
