"""`choreoscope correlate`: rebuild workflows across hops, find what is stuck, alert."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

import duckdb
import nats

from choreoscope.catalog import write_catalog
from choreoscope.commands.collect import nats_connect_options
from choreoscope.declared_hint import choreography_to_pass
from choreoscope.settings import add_flags
from correlator.alerts import Alerter, AlertNotTakenError, Publish
from correlator.choreography_file import load_choreography
from correlator.declared_choreography import Choreography
from correlator.findings import last_model_declared
from correlator.memory_budget import MemoryBudget
from correlator.thresholds import Thresholds
from correlator.watch import correlate_once, watch
from instrumentation import wire
from instrumentation.errors import BusUnavailableError, ChoreoscopeError
from instrumentation.nats_shutdown import drain_connection
from store import StoreLayout

ORDER = 50
DEFAULT_NATS = "nats://127.0.0.1:4222"
CONNECT_TIMEOUT_S = 10.0

log = logging.getLogger("choreoscope.correlate")

DESCRIPTION = """\
Rebuild every workflow run from the stored spans (across async hops,
parent/child and span links, keyed by choreo.workflow.id or the trace id) and
judge it against the choreography model: stalled, dropped, hung,
dead_lettered, failed, duplicate, orphan, deviation, telemetry_gap and slow,
each explained.

  --once    compute the findings from what is stored now, write them, and exit
            (no alerts are sent).
  --watch   refresh them every second, incrementally, and publish each new
            anomaly once as JSON on choreo.alerts.<kind> (and to --webhook).
            Restarting it does not re-alert old findings.

After an earlier pass, either mode picks up where it stopped: it judges again
only the runs active since shortly before it (whole), and older runs keep their
verdicts. It judges every run again when the thresholds, the choreography or
the choreoscope version changed, or once <data>/findings/last_pass.json is
removed.

  choreoscope correlate --once                  # judge what is stored, exit
  choreoscope correlate --watch --webhook https://hooks.example.com/choreo
  choreoscope correlate --watch --choreography choreography.yaml

Findings are Parquet files under <data>/findings/, read through the
`workflows`, `anomalies`, `messages`, `edges` and `hops` views:
  choreoscope workflows --status stalled
  choreoscope sql "select kind, workflow_id, detail from anomalies"

The model is learned from history; declare it with --choreography FILE (write
a starting one with `choreoscope model --write choreography.yaml`). Without
--nats, alerts go to a nats-server at 127.0.0.1:4222 (the one `choreoscope
demo` or `up` starts) if one runs there; none is started for them.
"""

FLAGS = (
    "data", "nats", "creds", "nkey", "token", "user", "password", "tls_ca", "tls_cert",
    "tls_key", "choreography", "min_deadline", "webhook", "dashboard_url", "memory_limit",
    "log_level",
)  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "correlate",
        help="find stalled workflows and dropped / hung / dead-lettered messages; alert",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--watch", action="store_true", help="keep findings fresh and alert")
    mode.add_argument("--once", action="store_true", help="compute findings once and exit")
    add_flags(
        p,
        *FLAGS,
        docs={
            "nats": "NATS URL(s) to publish alerts on, comma-separated; without one, "
            f"{DEFAULT_NATS} if a nats-server runs there, else no NATS alerts"
        },
    )
    p.set_defaults(handler=run)


def memory_budget(args: argparse.Namespace) -> MemoryBudget:
    if args.memory_limit is None:
        return MemoryBudget.default()
    return MemoryBudget(total=args.memory_limit)


def refresh_catalog(layout: StoreLayout) -> None:
    """Bring ``catalog.duckdb`` up to this version's views, as ``collect`` does when it
    starts: after an upgrade the findings views read the generation folders, and the
    old ones the files the correlator stops writing."""
    if not layout.exists():
        return  # `collect` creates the store, and its catalog
    try:
        layout.check_version()
    except ChoreoscopeError:
        return  # the correlator says what to do about it
    try:
        write_catalog(layout)
    except (OSError, duckdb.Error, ChoreoscopeError) as e:  # findings still get written
        log.error(
            "could not write %s (%s): `duckdb -readonly` users may read outdated views "
            "until `choreoscope collect` writes it; free disk space or fix the "
            "folder's permissions",
            layout.catalog, e,
        )  # fmt: skip


def declared_choreography(args: argparse.Namespace) -> Choreography | None:
    if not args.choreography:
        return None
    return load_choreography(args.choreography, store=args.data)


def run(args: argparse.Namespace) -> int:
    refresh_catalog(StoreLayout.at(args.data))
    thresholds = Thresholds(min_deadline_s=args.min_deadline)
    choreography = declared_choreography(args)
    if choreography is None and last_model_declared(StoreLayout.at(args.data)):
        # the demo, or an earlier run, judged with one: its workflow names and
        # deadlines would silently give way to learned ones
        log.warning(
            "the last pass over %s judged with a declared choreography, and this one "
            "declares none: workflow types, steps and deadlines are learned again. "
            "Pass --choreography %s to keep them",
            args.data,
            choreography_to_pass(layout=StoreLayout.at(args.data)),
        )  # fmt: skip
    if args.once:
        if args.webhook:  # it may come from the environment, set for the watcher
            log.warning(
                "--webhook %s is not used: --once writes the findings and sends no "
                "alert; `correlate --watch` posts each new anomaly to it",
                args.webhook,
            )
        engine = correlate_once(
            data_dir=args.data,
            thresholds=thresholds,
            choreography=choreography,
            memory=memory_budget(args),
        )
        open_ = [a for a in engine.ledger.rows() if a["resolved_at"] is None]
        by_kind: dict[str, int] = {}
        for a in open_:
            by_kind[a["kind"]] = by_kind.get(a["kind"], 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(by_kind.items())) or "none"
        print(f"{len(open_)} open anomalies ({summary}); findings in {engine.layout.findings}")
        print("see them: choreoscope workflows --status stalled failed")
        return 0
    alerter_args = {"dashboard_url": args.dashboard_url, "webhook": args.webhook}
    Alerter(publish=None, **alerter_args)  # validate the webhook before connecting
    asyncio.run(_watch(args, thresholds, choreography, alerter_args))
    return 0


async def _connect(args: argparse.Namespace, stop: asyncio.Event) -> Any:
    """A NATS connection for alerts, or None: when stopped meanwhile, or when no
    --nats was given and nothing answers on the default URL. Once connected, the
    client reconnects forever; the first attempt gives up after CONNECT_TIMEOUT_S."""
    servers = [u.strip() for u in (args.nats or DEFAULT_NATS).split(",") if u.strip()]
    last_warning = 0.0

    async def on_error(e: Exception) -> None:
        nonlocal last_warning
        if time.monotonic() - last_warning > 10:
            last_warning = time.monotonic()
            log.warning("NATS at %s: %s (retrying)", ",".join(servers), e or type(e).__name__)

    connecting = asyncio.create_task(
        nats.connect(
            servers=servers,
            connect_timeout=2,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            error_cb=on_error,
            name="choreoscope-correlator",
            **nats_connect_options(args),
        )
    )
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait(
        {connecting, stopping}, timeout=CONNECT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
    )
    stopping.cancel()
    if connecting in done and connecting.exception() is None:
        return connecting.result()
    reason = "stopped" if stop.is_set() else f"no answer in {CONNECT_TIMEOUT_S:g}s"
    if connecting in done:
        reason = str(connecting.exception()) or type(connecting.exception()).__name__
    else:
        connecting.cancel()
        with contextlib.suppress(BaseException):
            await connecting
    if stop.is_set():
        return None
    if args.nats:
        raise BusUnavailableError(url=",".join(servers), reason=reason)
    log.warning(
        "no nats-server at %s (%s): correlating without NATS alerts; pass --nats URL",
        DEFAULT_NATS,
        reason,
    )
    return None


def bus_publisher(nc: Any, *, confirm_timeout_s: float = 2.0) -> Publish:
    """Publish an alert on ``nc`` and return once the server has it (a PING answered
    after it), or raise so that it is held for the next tick. nats-py's ``publish``
    alone returns while reconnecting too, having only buffered the message: an alert
    then counted as sent was lost with the buffer when the watcher stopped before
    NATS came back, and one the server never got is not published (nor retried)."""

    async def publish(subject: str, payload: bytes, *, msg_id: str) -> None:
        if not nc.is_connected:  # a buffered alert would go out again, when retried
            raise AlertNotTakenError(subject=subject, reason="not connected")
        await nc.publish(subject, payload, headers={wire.MSG_ID: msg_id})
        try:
            await nc.flush(timeout=confirm_timeout_s)
        except Exception as e:
            raise AlertNotTakenError(subject=subject, reason=f"unconfirmed: {e!r}") from e

    return publish


async def _watch(
    args: argparse.Namespace,
    thresholds: Thresholds,
    choreography: Choreography | None,
    alerter_args: dict[str, Any],
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def request_stop(signum: int) -> None:
        log.info("%s received: writing findings and stopping", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop, sig)
    nc = await _connect(args, stop)
    if stop.is_set():
        return

    try:
        await watch(
            data_dir=args.data,
            alerter=Alerter(publish=bus_publisher(nc) if nc else None, **alerter_args),
            stop=stop,
            thresholds=thresholds,
            choreography=choreography,
            memory=memory_budget(args),
        )
    finally:
        if nc is not None:
            await drain_connection(nc)  # nats-py's drain, without its noise when cancelled
