"""Every setting of the front door, in one declarative table.

A value comes from the command-line flag, else the ``CHOREOSCOPE_<NAME>``
environment variable (or the OpenTelemetry variable where one is defined), else
the default. Components never read the environment: they take keyword arguments,
and only the front door resolves settings.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from instrumentation import wire
from instrumentation.errors import ConfigurationError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str) -> float:
    """``"250ms"``, ``"30s"``, ``"5m"``, ``"7d"`` or plain seconds, to seconds."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration; write it like 500ms, 30s, 5m, 2h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class Duration:
    """A duration parser with a floor, and optionally no unit-less numbers: where a
    mistake (``0``, or ``7`` meant as days) would silently delete data or disable a
    safeguard, the value is refused with what to write instead."""

    minimum: float
    unit_required: bool = False

    def __call__(self, text: str) -> float:
        match = _DURATION.match(str(text))
        if match and self.unit_required and match.group(2) is None:
            raise ValueError(
                f"{text!r} has no unit; write it with one, like {format_duration(self.minimum)}"
                " or 7d"
            )
        seconds = parse_duration(text)
        if seconds < self.minimum:
            raise ValueError(
                f"{text!r} is too short; write {format_duration(self.minimum)} or more"
            )
        return seconds


@dataclass(frozen=True)
class Count:
    """A whole number (``parse_count``) of at least ``minimum``."""

    minimum: int

    def __call__(self, text: str) -> int:
        value = parse_count(text)
        if value < self.minimum:
            raise ValueError(f"{text!r} is too small; write {_format_count(self.minimum)} or more")
        return value


def _format_count(n: int) -> str:
    """``n`` as a user would write it: ``256MiB`` for a size in whole MiB or GiB."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def parse_host_port(text: str) -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{text!r} is not HOST:PORT; write it like 127.0.0.1:4318")
    return host or "127.0.0.1", int(port)


NATS_SCHEMES = ("nats", "tls", "ws", "wss")
_BARE_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-]+(:\d+)?$")


def parse_nats_urls(text: str) -> str | None:
    """NATS server URLs, comma-separated: ``nats://``, ``tls://``, ``ws://`` or ``wss://``.
    A bare ``host:port`` (which nats-py reads as ``nats://host:port``) gets the scheme;
    an empty value is no URL, as if unset."""
    urls = []
    for part in str(text).split(","):
        url = part.strip()
        if not url:
            continue
        if "://" not in url and _BARE_HOST_PORT.match(url):
            url = f"nats://{url}"
        scheme, _, rest = url.partition("://")
        host = rest.rpartition("@")[2].split("/")[0]
        if scheme.lower() not in NATS_SCHEMES or not host or any(c.isspace() for c in url):
            raise ValueError(
                f"{url!r} is not a NATS URL; write it like nats://HOST:4222 "
                "(or tls://, ws://, wss://), several separated by commas"
            )
        urls.append(url)
    return ",".join(urls) or None


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def parse_log_level(text: str) -> str:
    level = str(text).strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"{text!r} is not a log level; write one of {', '.join(LOG_LEVELS)}")
    return level


def parse_count(text: str) -> int:
    """A whole number, optionally with a unit: ``50000``, ``50k``, ``8GiB``, ``512MiB``."""
    match = _COUNT.match(str(text))
    if not match:
        raise ValueError(
            f"{text!r} is not a whole number; write it like 50000, 50k, 512MiB or 8GiB"
        )
    return int(float(match.group(1)) * _COUNT_UNITS[(match.group(2) or "").lower()])


def parse_replicas(text: str) -> int:
    """A JetStream replica count: a whole number from 1 to 5."""
    if not str(text).strip().isdigit() or not 1 <= int(text) <= 5:
        raise ValueError(f"{text!r} is no replica count; JetStream takes 1 to 5 (1 on one server)")
    return int(text)


_COUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(k|m|g|kib|mib|gib|kb|mb|gb)?\s*$", re.IGNORECASE)
_COUNT_UNITS = {
    "": 1, "k": 10**3, "m": 10**6, "g": 10**9, "kb": 10**3, "mb": 10**6, "gb": 10**9,
    "kib": 2**10, "mib": 2**20, "gib": 2**30,
}  # fmt: skip


def parse_port(text: str) -> int:
    port = str(text).strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not a port; write a number from 1 to 65535")
    return int(port)


def parse_bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{text!r} is not a boolean; write true or false")


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    unset: str | None = None  # what an unset default means, for --help

    @property
    def env(self) -> str:
        return "CHOREOSCOPE_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def is_duration(self) -> bool:
        return self.parse is parse_duration or isinstance(self.parse, Duration)

    @property
    def metavar(self) -> str:
        """What ``--help`` shows the flag takes: ``DURATION`` for any duration, as
        every command that takes one writes it."""
        return "DURATION" if self.is_duration else self.name.upper()

    @property
    def shown_default(self) -> str:
        """The default as a user would type it: ``7d``, ``127.0.0.1:4318``, ``8 GiB``."""
        value = self.default
        if value is None:
            return self.unset or "none"
        if isinstance(value, tuple):
            return ":".join(str(v) for v in value)
        if self.is_duration:
            return format_duration(float(value))
        if isinstance(value, int) and value >= 2**20 and value % 2**30 == 0:
            return f"{value} ({value // 2**30} GiB)"
        return str(value)


def format_duration(seconds: float) -> str:
    """Seconds as a user would write them: ``5s``, ``250ms``, ``2m``, ``7d``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("data", Path, Path("choreoscope-data"), "the store directory"),
        Setting(
            "nats",
            parse_nats_urls,
            None,
            "NATS URL(s), comma-separated; without one an embedded nats-server is started",
        ),
        Setting(
            "nats_port",
            parse_port,
            4222,
            "the port of the nats-server `demo` and `up` (without --nats) start; unset and "
            "4222 taken, they take a free one and say so",
        ),
        Setting("creds", Path, None, "NATS credentials file (.creds)"),
        Setting("nkey", Path, None, "NATS nkey seed file"),
        Setting("token", str, None, "NATS auth token"),
        Setting("user", str, None, "NATS user name"),
        Setting("password", str, None, "NATS password"),
        Setting("tls_ca", Path, None, "CA bundle to verify the NATS server's TLS certificate"),
        Setting("tls_cert", Path, None, "client TLS certificate for NATS"),
        Setting("tls_key", Path, None, "client TLS key for NATS"),
        Setting("log_level", parse_log_level, "INFO", "log level: DEBUG, INFO, WARNING or ERROR"),
        Setting(
            "otlp_http",
            parse_host_port,
            ("127.0.0.1", 4318),
            "where the OTLP/HTTP receiver listens (HOST:PORT)",
        ),
        Setting(
            "retention",
            Duration(minimum=3600.0, unit_required=True),
            7 * 86400.0,
            "drop the store's hours (spans, heartbeats, bus events, ...) older than this "
            "(with a unit; at least 1h)",
        ),
        Setting(
            "flush_interval",
            Duration(minimum=0.01),
            1.0,
            "write a segment at least this often (at least 10ms)",
        ),
        Setting(
            "flush_rows",
            Count(minimum=1),
            50_000,
            "write a segment when this many rows are buffered (at least 1)",
        ),
        Setting(
            "stream_replicas",
            parse_replicas,
            1,
            "replicas of the CHOREO_SPANS stream when created (1 to 5)",
        ),
        Setting(
            "stream_max_age",
            Duration(minimum=60.0, unit_required=True),
            wire.SPANS_STREAM_MAX_AGE_S,
            "CHOREO_SPANS keeps messages this long (with a unit; at least 1m)",
        ),
        Setting(
            "stream_max_bytes",
            Count(minimum=2**20),
            wire.SPANS_STREAM_MAX_BYTES,
            "CHOREO_SPANS keeps at most this many bytes (at least 1MiB)",
        ),
        Setting(
            "decode_workers",
            parse_count,
            None,
            "processes decoding OTLP protobuf/JSON spans (default: one per core; 0: in-process)",
        ),
        Setting(
            "ack_wait",
            Duration(minimum=1.0),
            30.0,
            "JetStream redelivers spans a collector fetched but did not ack after this long "
            "(at least 1s)",
        ),
        # a floor of 0 leaves a step that was always quick a deadline of milliseconds:
        # every run then looks stuck the moment it is judged
        Setting(
            "min_deadline",
            Duration(minimum=0.1),
            30.0,
            "the floor under learned step deadlines (at least 100ms; unset, `model` "
            "takes the one the store's correlator last judged with)",
        ),
        Setting("choreography", Path, None, "a declared choreography.yaml"),
        Setting(
            "memory_limit",
            Count(minimum=256 * 2**20),
            None,
            "memory the correlator's DuckDB may hold, like 4GiB (at least 256MiB); past it "
            "a pass spills to <data>/.spill, slower but complete",
            unset="half this machine's memory (or its container's limit)",
        ),
        Setting("webhook", str, None, "also POST each new alert as JSON to this URL"),
        Setting(
            "dashboard_url",
            str,
            "http://127.0.0.1:8501",
            "the dashboard's address, for the ?workflow=<id> link in each alert",
        ),
        Setting("host", str, "127.0.0.1", "the address the dashboard binds"),
        Setting("port", parse_port, 8501, "the port the dashboard listens on"),
    ]
}


def add_flags(
    parser: argparse.ArgumentParser,
    *names: str,
    docs: dict[str, str] | None = None,
    defaults: dict[str, str] | None = None,
) -> None:
    """Add ``--flag`` options for settings; unset flags resolve in ``resolve()``.
    ``docs`` replaces a setting's description where one command uses it differently,
    ``defaults`` the default shown where that command chooses its own."""
    for name in names:
        s = SETTINGS[name]
        doc = (docs or {}).get(name, s.doc)
        default = (defaults or {}).get(name, s.shown_default)
        parser.add_argument(
            s.flag,
            dest=name,
            default=None,
            metavar=s.metavar,
            help=f"{doc} (env {s.env}; default {default})",
        )


DEFAULT: Final = "default"  # a setting's source in ``resolve()``: neither flag nor variable


def resolve(args: argparse.Namespace, *, environ: dict[str, str] | None = None) -> None:
    """Fill every setting flag left unset from the environment, then the default.
    ``args.setting_sources`` then says where each came from: its flag, its variable,
    or ``DEFAULT`` (a command whose default depends on the store tells them apart)."""
    env = os.environ if environ is None else environ
    sources: dict[str, str] = {}
    args.setting_sources = sources
    for name, s in SETTINGS.items():
        if not hasattr(args, name):
            continue
        raw = getattr(args, name)
        source = s.flag
        if raw is None:
            raw = env.get(s.env)
            source = s.env
        if raw is None:
            setattr(args, name, s.default)
            sources[name] = DEFAULT
            continue
        sources[name] = source
        try:
            setattr(args, name, s.parse(raw))
        except ValueError as e:
            raise ConfigurationError(setting=source, value=raw, fix=str(e)) from None
