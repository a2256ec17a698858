"""`choreoscope demo`: everything in one command, with sample pipelines and faults."""

from __future__ import annotations

import argparse
from pathlib import Path

from choreoscope.demo_run import DemoRun
from choreoscope.settings import DEFAULT, SETTINGS, add_flags, parse_duration
from instrumentation.errors import ConfigurationError
from samples.faults import parse_fault_rates

ORDER = 10

DESCRIPTION = """\
Start, in order: an embedded nats-server, the collector (with its OTLP/HTTP
receiver), the correlator, two sample agent pipelines (recruitment intake, and
orders with fan-out and fan-in) with a steady trickle of workflows and a few
injected faults a minute (one of each kind within the first two minutes, then at
random), and the dashboard. It prints what runs where and the
dashboard URL; Ctrl-C stops everything. A component that crashes is reported
with its exit code and the end of its log.

Every fault injected is written to <data>/demo/ground-truth.jsonl. With
--verify, the demo compares it with what the correlator found, prints precision
and recall per kind and, per fault, the findings of other kinds it caused, and
exits non-zero if a fault was missed or a healthy workflow flagged.

examples:
  choreoscope demo
  choreoscope demo --duration 60 --no-dashboard --verify
  choreoscope demo --rate 5 --faults drop=0.05,hang=0.02,poison=0.02
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run everything with sample pipelines and injected faults; prints the dashboard URL",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_flags(p, "data", "nats_port", "log_level", "otlp_http", "host", "port")
    p.add_argument(
        "--duration",
        type=_duration,
        default=None,
        help="run the sample traffic this long (like 30s or 5m), then stop; default: until Ctrl-C",
    )
    p.add_argument(
        "--no-dashboard", action="store_true", help="run headless, without the dashboard"
    )
    p.add_argument(
        "--rate",
        type=float,
        default=1.0,
        help="workflows started per second by each sample pipeline (default 1)",
    )
    p.add_argument(
        "--faults",
        default="demo",
        help="share of workflows that get each fault: 'demo' (each kind once in the first "
        "two minutes, then a few a minute), 'none', "
        "a list like drop=0.05,hang=0.02, or a YAML file of the same mapping. Kinds: "
        "drop, hang, crash, poison, duplicate, consumer_down, deviation, lost_telemetry, slow",
    )
    p.add_argument(
        "--seed", type=int, default=7, help="the seed that decides which workflows fail (default 7)"
    )
    p.add_argument(
        "--min-deadline",
        dest="step_deadline",
        metavar="DURATION",
        type=_min_deadline,
        default=5.0,
        help="the correlator's floor under step deadlines (demo default 5s, so stalls show fast)",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="after --duration, wait for the correlator, compare its findings with the "
        "ground truth, print precision and recall per kind, exit 1 on any miss",
    )
    p.add_argument(
        "--settle",
        type=_duration,
        default=None,
        help="with --verify: how long to wait after the traffic stops (default 3 deadlines + 5s)",
    )
    p.add_argument(
        "--no-otlp-http", action="store_true", help="do not start the OTLP/HTTP receiver"
    )
    p.set_defaults(handler=run)


def check_options(args: argparse.Namespace) -> None:
    """Refuse, before anything starts, options that cannot work together."""
    if args.rate <= 0:
        raise ConfigurationError(setting="--rate", value=args.rate, fix="give a positive rate")
    if args.duration is not None and args.duration <= 0:
        raise ConfigurationError(
            setting="--duration",
            value=f"{args.duration:g}s",
            fix="give a duration over zero, like 60s, or leave it out to run until Ctrl-C",
        )
    if args.verify and args.duration is None:
        raise ConfigurationError(
            setting="--verify", value=True, fix="add --duration (like 60s) so the run ends"
        )
    if args.settle is not None and not args.verify:
        raise ConfigurationError(
            setting="--settle",
            value=f"{args.settle:g}s",
            fix="it is the wait before --verify compares: add --verify and --duration, "
            "or leave --settle out",
        )
    parse_fault_rates(args.faults)  # a bad --faults fails here, before anything starts


def run(args: argparse.Namespace) -> int:
    check_options(args)
    demo = DemoRun(
        data=Path(args.data),
        rate=args.rate,
        faults=args.faults,
        seed=args.seed,
        step_deadline=args.step_deadline,
        otlp_http=None if args.no_otlp_http else args.otlp_http,
        host=args.host,
        port=args.port,
        dashboard=not args.no_dashboard,
        log_level=str(args.log_level),
        nats_port=args.nats_port,
        nats_port_chosen=args.setting_sources.get("nats_port", DEFAULT) != DEFAULT,
    )
    return demo.run(duration=args.duration, verify=args.verify, settle=args.settle)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _min_deadline(text: str) -> float:
    """The correlator's own floor (at least 100ms), checked here: a value it refuses
    would otherwise stop the demo after everything started."""
    try:
        return SETTINGS["min_deadline"].parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
