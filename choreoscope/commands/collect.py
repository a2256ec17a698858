"""`choreoscope collect`: spans from NATS JetStream (and OTLP/HTTP) into the trace store."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import ssl
from typing import Any

import duckdb

from choreoscope.catalog import write_catalog
from choreoscope.nats_server import EmbeddedNats
from choreoscope.settings import add_flags
from choreoscope.stack import ensure_port_free
from collector.service import CollectorConfig, run_collector
from instrumentation.errors import ChoreoscopeError
from store import StoreLayout

ORDER = 40
EMBEDDED_NATS_PORT = 4222

log = logging.getLogger("choreoscope.collect")

DESCRIPTION = """\
Consume the CHOREO_SPANS stream (creating it if missing) with a durable pull
consumer that any number of collectors can share, and write every span into
the trace store as zstd Parquet segments. Messages are acked only once their
segment is on disk, so a crash loses nothing; the views deduplicate
redeliveries.

Also: an OTLP/HTTP receiver (POST /v1/traces, protobuf or JSON) for any
OpenTelemetry SDK; JetStream advisories (max deliveries, terminated, nak) into
bus_events; service heartbeats into heartbeats; refused input into rejected;
background compaction and retention. Without --nats, an embedded nats-server
is started on 127.0.0.1:4222 with JetStream in <data>/nats.

Read the store meanwhile with `choreoscope sql`, or
`duckdb -readonly <data>/catalog.duckdb`. Ctrl-C (or SIGTERM) stops it after
writing and acking what it has fetched.

  choreoscope collect                 # embedded NATS, ./choreoscope-data
  choreoscope collect --nats nats://10.0.0.5:4222 --creds app.creds \\
      --data /srv/traces
  choreoscope collect --retention 3d --otlp-http 0.0.0.0:4318
"""

FLAGS = (
    "data", "nats", "creds", "nkey", "token", "user", "password", "tls_ca", "tls_cert",
    "tls_key", "otlp_http", "retention", "flush_interval", "flush_rows", "stream_replicas",
    "stream_max_age", "stream_max_bytes", "decode_workers", "ack_wait", "log_level",
)  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "collect",
        help="ingest spans from NATS (and OTLP/HTTP) into the trace store",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_flags(p, *FLAGS)
    p.add_argument(
        "--no-otlp-http",
        action="store_true",
        help="do not start the OTLP/HTTP receiver (wins over --otlp-http)",
    )
    p.set_defaults(handler=run)


def nats_connect_options(args: argparse.Namespace) -> dict[str, Any]:
    """nats-py ``connect`` keyword arguments from the credential settings."""
    options: dict[str, Any] = {}
    if getattr(args, "creds", None):
        options["user_credentials"] = str(args.creds)
    if getattr(args, "nkey", None):
        options["nkeys_seed"] = str(args.nkey)
    if getattr(args, "token", None):
        options["token"] = args.token
    if getattr(args, "user", None):
        options["user"] = args.user
        options["password"] = getattr(args, "password", None)
    if getattr(args, "tls_ca", None) or getattr(args, "tls_cert", None):
        context = ssl.create_default_context(
            cafile=str(args.tls_ca) if getattr(args, "tls_ca", None) else None
        )
        if getattr(args, "tls_cert", None):
            context.load_cert_chain(str(args.tls_cert), str(args.tls_key) if args.tls_key else None)
        options["tls"] = context
    return options


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex((host, port)) == 0


def restore_catalog(layout: StoreLayout) -> None:
    """Write ``catalog.duckdb`` again if it was deleted, damaged or is outdated while
    the collector runs: ``duckdb -readonly`` users read it, not the collector."""
    if write_catalog(layout):
        log.warning(
            "%s was missing, unreadable or outdated: wrote it again; readers that "
            "failed to open it can open it now",
            layout.catalog,
        )


def run(args: argparse.Namespace) -> int:
    if not args.no_otlp_http:  # before the store and an embedded nats-server are made
        ensure_port_free(*args.otlp_http, flag="--otlp-http")
    layout = StoreLayout.at(args.data)
    layout.ensure()
    try:
        write_catalog(layout)
    except (OSError, duckdb.Error) as e:  # a full disk must not keep spans from NATS
        log.error(
            "could not write %s (%s): collecting anyway, and trying again each maintenance "
            "pass; free disk space (or fix the folder's permissions) for `duckdb -readonly` "
            "users to open it",
            layout.catalog, e,
        )  # fmt: skip
    embedded: EmbeddedNats | None = None
    servers = [u.strip() for u in (args.nats or "").split(",") if u.strip()]
    if not servers:
        if _port_taken("127.0.0.1", EMBEDDED_NATS_PORT):
            raise ChoreoscopeError(
                f"cannot start the embedded nats-server: 127.0.0.1:{EMBEDDED_NATS_PORT} is "
                "taken. If a nats-server runs there, pass --nats nats://127.0.0.1:4222"
            )
        embedded = EmbeddedNats(
            store_dir=layout.nats,
            port=EMBEDDED_NATS_PORT,
            log_file=layout.root / "nats-server.log",
        ).start()
        servers = [embedded.url]
    config = CollectorConfig(
        data_dir=layout.root,
        servers=servers,
        nats_options=nats_connect_options(args),
        flush_rows=args.flush_rows,
        flush_interval=args.flush_interval,
        stream_replicas=args.stream_replicas,
        stream_max_age=args.stream_max_age,
        stream_max_bytes=args.stream_max_bytes,
        retention=args.retention,
        otlp_http=None if args.no_otlp_http else args.otlp_http,
        decode_workers=args.decode_workers,
        ack_wait=args.ack_wait,
        upkeep={"restoring catalog.duckdb": lambda: restore_catalog(layout)},
    )
    try:
        asyncio.run(_collect(config))
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


async def _collect(config: CollectorConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def request_stop(signum: int) -> None:
        log.info("%s received: flushing and stopping", signal.Signals(signum).name)
        stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)  # a second Ctrl-C stops at once

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop, sig)
    await run_collector(config, stop=stop)
