"""`choreoscope up`: the collector, the correlator and the dashboard against your NATS."""

from __future__ import annotations

import argparse
from pathlib import Path

from choreoscope.settings import DEFAULT, SETTINGS, add_flags
from choreoscope.stack import (
    StackOptions,
    collector_spec,
    correlator_spec,
    credentials_env,
    dashboard_spec,
    embedded_nats_port,
    ensure_nats_answers,
    ensure_port_free,
    nats_spec,
)
from choreoscope.stack_lock import sole_stack
from choreoscope.stack_run import (
    print_table,
    start_all,
    stop_everything,
    stop_on_signals,
    watch_until_done,
)
from choreoscope.supervisor import Supervisor
from instrumentation.errors import ConfigurationError

ORDER = 20
STOP_GRACE_SECONDS = 15.0

DESCRIPTION = """\
The production entry point: run the collector (with its OTLP/HTTP receiver), the
correlator and the dashboard against your NATS, supervised, until Ctrl-C. A
component that crashes is reported with its exit code and the end of its log,
and the others are stopped. Credentials are handed to the components through
their environment, never their command line.

Without --nats, an embedded nats-server is started on 127.0.0.1, port 4222
(--nats-port chooses another; left unset and 4222 taken, a free port is used,
and said).

examples:
  choreoscope up --nats nats://bus-1:4222,nats://bus-2:4222 --creds ops.creds
  CHOREOSCOPE_TOKEN=s3cret choreoscope up --nats tls://bus:4222 --tls-ca ca.pem
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "up",
        help="run collector, correlator and dashboard against your NATS (production)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_flags(
        p,
        "data", "nats", "nats_port", "creds", "nkey", "token", "user", "password",
        "tls_ca", "tls_cert", "tls_key", "log_level", "otlp_http",
        "min_deadline", "choreography", "webhook", "dashboard_url", "host", "port",
        "memory_limit",
    )  # fmt: skip
    p.add_argument("--no-dashboard", action="store_true", help="run without the dashboard")
    p.add_argument(
        "--no-otlp-http", action="store_true", help="do not start the OTLP/HTTP receiver"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    data = Path(args.data).expanduser().resolve()
    dashboard = None if args.no_dashboard else f"http://{args.host}:{args.port}"
    with sole_stack(data, command="up", dashboard=dashboard):
        return _run(args, data)


def _run(args: argparse.Namespace, data: Path) -> int:
    if not args.no_otlp_http:
        ensure_port_free(*args.otlp_http, flag="--otlp-http")
    if not args.no_dashboard:
        ensure_port_free(args.host, args.port, flag="--port", host_flag="--host")
    chosen = args.setting_sources.get("nats_port", DEFAULT) != DEFAULT
    if args.nats:
        if args.setting_sources.get("nats_port") == SETTINGS["nats_port"].flag:
            raise ConfigurationError(
                setting="--nats-port",
                value=args.nats_port,
                fix="it is the port of the nats-server `up` starts without --nats; "
                "with --nats, leave --nats-port out",
            )
        ensure_nats_answers(args.nats)
    embedded_port = None if args.nats else embedded_nats_port(args.nats_port, chosen=chosen)
    options = StackOptions(
        data=data,
        nats_url=args.nats or f"nats://127.0.0.1:{embedded_port}",
        otlp_http=None if args.no_otlp_http else args.otlp_http,
        min_deadline=args.min_deadline,
        choreography=args.choreography,
        host=args.host,
        port=args.port,
        log_level=str(args.log_level),
        credentials_env=credentials_env(args),
        webhook=args.webhook,
        memory_limit=args.memory_limit,
        # the alerts link to --dashboard-url when given, else to the dashboard started here
        public_dashboard_url=(
            None if args.dashboard_url == SETTINGS["dashboard_url"].default else args.dashboard_url
        ),
    )
    specs = []
    if embedded_port is not None:
        specs.append(nats_spec(data=data, host="127.0.0.1", port=embedded_port))
    specs += [collector_spec(options), correlator_spec(options)]
    if not args.no_dashboard:
        specs.append(dashboard_spec(options))
    log_dir = data / "logs"
    with (
        Supervisor(log_dir=log_dir, grace=STOP_GRACE_SECONDS) as supervisor,
        stop_on_signals(supervisor) as stop,
    ):
        try:
            if (code := start_all(supervisor, specs, stop=stop)) is not None:
                return code
            print_table(specs, log_dir=log_dir, title=f"choreoscope is up on {options.nats_url}:")
            if not args.no_dashboard:
                print(f"Open the dashboard: {options.dashboard_url}", flush=True)
            print("Ctrl-C stops everything.", flush=True)
            return watch_until_done(supervisor, stop=stop, duration=None)
        finally:
            stop_everything(supervisor)
