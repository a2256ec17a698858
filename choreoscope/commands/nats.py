"""`choreoscope nats`: run the embedded nats-server in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading

from choreoscope.nats_server import EmbeddedNats
from choreoscope.settings import add_flags
from choreoscope.stack import ensure_port_free

ORDER = 30


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "nats",
        help="run the embedded nats-server (JetStream on) in the foreground",
        description="Run the nats-server shipped with choreoscope, bound to 127.0.0.1,\n"
        "with JetStream stored in <data>/nats. Ctrl-C stops it.\n\n"
        "  choreoscope nats                 # nats://127.0.0.1:4222\n"
        "  choreoscope nats --port 4333     # then, in another terminal:\n"
        "  choreoscope collect --nats nats://127.0.0.1:4333\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_flags(p, "data", "log_level")
    p.add_argument("--port", type=int, default=4222, help="client port (default 4222)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    ensure_port_free(
        "127.0.0.1",
        args.port,
        flag="--port",
        taken="a nats-server may already run there",
        settings=False,  # its own --port, not the dashboard's CHOREOSCOPE_PORT
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = EmbeddedNats(store_dir=args.data / "nats", port=args.port)
    with server:
        print(f"nats-server on {server.url}, JetStream in {args.data / 'nats'}; Ctrl-C stops it")
        while not stop.wait(0.5):
            if not server.running:
                print("nats-server exited unexpectedly")
                return 1
    return 0
