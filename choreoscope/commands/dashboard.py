"""`choreoscope dashboard`: serve the Streamlit dashboard over a store."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import dashboard
from choreoscope.settings import add_flags
from choreoscope.stack import ensure_port_free

ORDER = 50

DESCRIPTION = """\
Serve the dashboard (Streamlit) over the store in --data: stalled workflows and
why, each workflow's timeline, the choreography map, anomalies, services, and a
read-only SQL console.

It binds 127.0.0.1 unless --host says otherwise: the dashboard has no login, so
expose it on another address only behind your own access control. Streamlit's
usage statistics are off. Open a workflow directly with
http://HOST:PORT/?workflow=<workflow id>.

  choreoscope dashboard                           # http://127.0.0.1:8501
  choreoscope dashboard --data /srv/traces --port 8600
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve the dashboard (stalled workflows, timelines, map, SQL console)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_flags(p, "data", "host", "port", "log_level")
    p.set_defaults(handler=run)


def streamlit_argv(*, data: Path, host: str, port: int, log_level: str = "INFO") -> list[str]:
    """The ``streamlit run`` command line serving the dashboard headless."""
    app = Path(dashboard.__file__).with_name("app.py")
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.headless=true",
        f"--server.address={host}",
        f"--server.port={port}",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        f"--browser.serverAddress={host}",
        f"--browser.serverPort={port}",
        "--client.toolbarMode=viewer",
        f"--logger.level={str(log_level).lower()}",
        "--",
        "--data",
        str(Path(data).expanduser().resolve()),
    ]


def run(args: argparse.Namespace) -> int:
    ensure_port_free(args.host, args.port, flag="--port", host_flag="--host")
    argv = streamlit_argv(data=args.data, host=args.host, port=args.port, log_level=args.log_level)
    print(
        f"choreoscope dashboard on http://{args.host}:{args.port}/ over the store "
        f"{Path(args.data).resolve()}; Ctrl-C stops it",
        flush=True,
    )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"note: bound to {args.host}, reachable from other machines; the dashboard "
            "has no login of its own",
            flush=True,
        )
    # Become the Streamlit server, so the supervisor's signals reach it directly.
    os.execv(argv[0], argv)
    return 0  # not reached
