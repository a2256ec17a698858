"""`choreoscope show WORKFLOW_ID`: one workflow run as a waterfall in the terminal."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
from typing import Any

import duckdb

import correlator
from choreoscope.settings import add_flags
from correlator.explain import ago
from correlator.last_pass import read_last_pass
from correlator.queries import (
    awaited_by,
    scoped_to_workflow,
    workflow_messages,
    workflows_matching,
)
from instrumentation.errors import ChoreoscopeError
from store import StoreLayout, read_retrying

ORDER = 61

DESCRIPTION = """\
Show one workflow run: its status and the step it waits on, the anomalies found,
and each hop as a waterfall bar: queue wait (publish to handler start) as '.',
processing as '#' ('!' when it raised). Messages an expected consumer group has
not processed are listed with what became of them, naming each such group and
whether it received the message: 'payment (not received)', or 'payment
(received, never finished)' for a handler that never returned. A unique prefix
of the workflow id is enough.

  choreoscope workflows --status stalled       # find one
  choreoscope show 3f9c                         # a unique prefix will do
  choreoscope show 3f9c --data /srv/choreoscope-data
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "show",
        help="one workflow run as a waterfall of its hops",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("workflow_id", metavar="WORKFLOW_ID", help="the workflow id (or a prefix)")
    add_flags(p, "data", "log_level")
    p.set_defaults(handler=run)


def _resolve(con: Any, prefix: str) -> str:
    prefix = prefix.removesuffix("…")  # an id as `workflows` cuts it to fit a terminal
    ids = workflows_matching(con, prefix=prefix)
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise ChoreoscopeError(
            f"no workflow {prefix!r} in the store: list them with `choreoscope workflows`"
        )
    more = ", …" if len(ids) > 5 else ""  # workflows_matching gives one more than shown
    raise ChoreoscopeError(
        f"{prefix!r} matches several workflows ({', '.join(ids[:5])}{more}): give more of the id"
    )


def waterfall(hops: list[dict[str, Any]], *, width: int) -> list[str]:
    """One line per hop: label, then a bar placed on the run's time axis."""
    if not hops:
        return []
    starts = [h["published_at"] or h["started_at"] for h in hops]
    t0 = min(starts)
    t1 = max(h["ended_at"] for h in hops)
    span = max((t1 - t0).total_seconds(), 1e-6)
    labels = [
        f"{h['subject']} → {h['consumer']}" + (f" #{h['attempt']}" if h["attempt"] > 1 else "")
        for h in hops
    ]
    label_w = min(max(len(lbl) for lbl in labels), 48)
    bar_w = max(width - label_w - 22, 10)
    lines = []
    for h, start, label in zip(hops, starts, labels, strict=True):

        def col(t: Any) -> int:
            return round((t - t0).total_seconds() / span * (bar_w - 1))

        a, b, c = col(start), col(h["started_at"]), col(h["ended_at"])
        b = max(a, b)
        mark = "!" if h["status_code"] == "error" else "#"
        bar = " " * a + "." * (b - a) + mark * max(c - b, 1)
        # the queue wait is unknown when the message's publish span never arrived
        wait = "?" if h["queue_wait_ms"] is None else f"{h['queue_wait_ms']:.0f}"
        timing = f"{wait:>7}+{h['processing_ms']:.0f}ms"
        skew = " skew" if h["clock_skew"] else ""
        lines.append(f"{label[:label_w].ljust(label_w)} |{bar.ljust(bar_w)}| {timing}{skew}")
    return lines


def run(args: argparse.Namespace) -> int:
    con = correlator.connect(args.data)
    try:  # again if a file changed under it (store.rereading)
        # an id pasted from a table comes with the spaces around it
        run = read_retrying(lambda: _read_run(con, args.workflow_id.strip()))
    finally:
        con.close()
    (workflow_id, (status, wf_type, started, last, duration, waiting, cause, services),
     hops, unhandled, anomalies) = run  # fmt: skip
    width = shutil.get_terminal_size((100, 20)).columns
    print(f"workflow {workflow_id}  ({wf_type or 'unknown type'})")
    print(f"status   {status}" + (f", waiting on {waiting}" if waiting else "")
          + (f" ({cause})" if cause else ""))  # fmt: skip
    if status == "in_flight" and read_last_pass(StoreLayout.at(args.data)) is None:
        # every run shows as in_flight until a pass judges it, stuck or not (a status
        # judged, with last_pass.json removed to judge every run again, is not)
        print("         (not judged yet: run `choreoscope correlate --once`)")
    print(f"started  {started:%Y-%m-%d %H:%M:%S.%f}"[:-3] + " UTC")
    print(activity_line(status=status, duration_ms=duration, last_activity_at=last))
    print(f"services {', '.join(services)}")
    if anomalies:
        print("\nanomalies:")
        for kind, detail, resolved in anomalies:
            print(f"  [{kind}{', resolved' if resolved else ''}] {detail}")
    print("\nhops (queue wait '.', processing '#', raised '!'):")
    for line in waterfall(hops, width=width) or ["  (no message was processed)"]:
        print(line)
    if unhandled:
        print("\nmessages not processed:")
        for subject, producer, published, outcome in unhandled:
            at = f"{published:%H:%M:%S}" if published else "?"
            print(f"  {subject} from {producer or '?'} at {at}: {outcome}")
    return 0


def _read_run(con: duckdb.DuckDBPyConnection, given_id: str) -> tuple[Any, ...]:
    """The run's id, its status row, hops, messages not processed and anomalies."""
    workflow_id = _resolve(con, given_id)
    params = {"wf": workflow_id}
    # the run and its hops, over the workflow's traces only, not the whole store
    # (hops join spans to spans: seconds on a store of a million spans)
    with scoped_to_workflow(con, workflow_id=workflow_id):
        summary = con.execute(
            "SELECT status, workflow_type, started_at, last_activity_at, duration_ms, "
            "waiting_on, root_cause, services FROM workflows WHERE workflow_id = $wf",
            params,
        ).fetchone()
        result = con.execute(
            "SELECT * FROM hops WHERE workflow_id = $wf "
            "ORDER BY coalesce(published_at, started_at), started_at",
            params,
        )
        names = [d[0] for d in result.description]
        hops = [dict(zip(names, r, strict=True)) for r in result.fetchall()]
    attempted = {(h["message_id"], h["consumer"]) for h in hops}
    unhandled = []
    for m in workflow_messages(con, workflow_id=workflow_id).itertuples():
        # a fan-out message some groups processed still waits on the others: the
        # outcome alone ("processed") left the step the run is stuck on unlisted
        waits = awaited_by(m, attempted=attempted)
        # a run's last event, which the choreography expects nobody to consume,
        # is where it ends, not a message left unprocessed
        ends_run = m.outcome == "unconsumed" and m.model_known and not len(m.expected_consumers)
        if not waits and (m.outcome == "processed" or ends_run):
            continue
        outcome = m.outcome
        if outcome == "processed":
            outcome = f"processed by {', '.join(str(c) for c in m.consumers)}"
        if waits:
            outcome += f"; waits on {', '.join(waits)}"
        unhandled.append((m.subject, m.producer_service, m.published_at, outcome))
    anomalies = con.execute(
        "SELECT kind, detail, resolved_at IS NOT NULL FROM anomalies "
        "WHERE workflow_id = $wf ORDER BY detected_at",
        params,
    ).fetchall()
    return workflow_id, summary, hops, unhandled, anomalies


def activity_line(*, status: str, duration_ms: float | None, last_activity_at: dt.datetime) -> str:
    """How long the run was active, and, unless it completed, how long it has been
    quiet: a run stuck for minutes is stuck for minutes, not "322 ms so far"."""
    took = ago((duration_ms or 0) / 1000)
    if status == "completed":
        return f"took     {took}"
    quiet = ago((dt.datetime.now(dt.UTC) - last_activity_at).total_seconds())
    last = f"{last_activity_at:%H:%M:%S} UTC"
    return f"active   {took}, then nothing since {last} ({quiet} ago)"
