"""`choreoscope workflows`: the workflow runs as a table in the terminal."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
from collections.abc import Sequence

import duckdb

import correlator
from choreoscope.settings import add_flags
from choreoscope.time_window import parse_window, window_begins, window_text
from correlator.explain import ago
from correlator.last_pass import read_last_pass
from correlator.queries import WORKFLOW_STATUSES, list_workflows, workflow_counts
from store import StoreLayout, read_retrying

ORDER = 60

DESCRIPTION = """\
List workflow runs, stuck ones first (then the latest active), with the step
each waits on and why. Statuses come from the correlator's last pass
(`choreoscope correlate`); a run it has not judged yet shows as in_flight.
Stalled and in-flight runs are listed however old; the others, those active in
the last --since (24h unless told: `--since all` reads every stored span).

  choreoscope workflows --status stalled failed
  choreoscope workflows --since 7d --type recruitment
  choreoscope show <WORKFLOW_ID>          # one run as a waterfall
"""

DEFAULT_SINCE = "24h"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "workflows",
        help="list workflow runs (stalled first) as a table",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_flags(p, "data", "log_level")
    p.add_argument(
        "--status",
        nargs="+",
        choices=WORKFLOW_STATUSES,
        metavar="STATUS",  # the choices, listed once in the help, not twice in the usage
        help=f"only runs with these statuses: {', '.join(WORKFLOW_STATUSES)}",
    )
    p.add_argument("--type", dest="workflow_type", help="only runs of this workflow type")
    p.add_argument(
        "--since",
        type=parse_window,
        default=parse_window(DEFAULT_SINCE),
        metavar="DURATION",
        help=f"runs active within this long, like 1h or 7d (default {DEFAULT_SINCE}), or "
        "`all`; stalled and in-flight runs are listed however old. Over all of a large "
        "store this reads every span (a week of spans takes minutes and gigabytes)",
    )
    p.add_argument(
        "--limit", type=_positive, default=50, help="show at most this many (default 50)"
    )
    p.set_defaults(handler=run)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = _widths(headers, rows)
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line.rstrip(), "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(out)


def _widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    return [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]


def _table_width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    return sum(_widths(headers, rows)) + 2 * (len(headers) - 1)


# what a narrow terminal gives up, in order, until the table fits: whole columns,
# the ids' ends (as git abbreviates hashes; `show` takes a prefix), the ends of
# texts, down to what can still be read
NARROWING = (
    ("drop", "svcs"), ("drop", "ran for"), ("drop", "started"), ("cut ids", "workflow"),
    ("cut", "type"), ("drop", "type"), ("cut", "waiting on"), ("cut", "cause"),
)  # fmt: skip
ID_SHOWN = 12  # characters of an id kept at least, when ids are cut
TEXT_KEPT = 12  # characters of a text kept at least, when texts are cut


def fit_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, width: int
) -> tuple[list[str], list[list[str]], bool]:
    """The table narrowed to ``width`` columns as far as it can be read, and
    whether ids were cut."""
    headers, rows = list(headers), [list(r) for r in rows]
    ids_cut = False
    for step, name in NARROWING:
        over = _table_width(headers, rows) - width
        if over <= 0:
            break
        i = headers.index(name)
        if step == "drop":
            del headers[i]
            for r in rows:
                del r[i]
        elif step == "cut ids":
            ids_cut = _cut_ids(rows, i)
        else:
            keep = max(TEXT_KEPT, _widths(headers, rows)[i] - over)
            for r in rows:
                if len(r[i]) > keep:
                    r[i] = r[i][: keep - 1] + "…"
    return headers, rows, ids_cut


def _cut_ids(rows: list[list[str]], i: int) -> bool:
    """Cut the ids in column ``i`` to one length, ``ID_SHOWN`` characters or as
    many as keep the listed ids apart; whether any was cut."""
    ids = {r[i] for r in rows}
    if all(len(x) <= ID_SHOWN + 1 for x in ids):
        return False  # short already
    keep = next(
        n for n in range(ID_SHOWN, max(map(len, ids)) + 1) if len({x[:n] for x in ids}) == len(ids)
    )
    cut = False
    for r in rows:
        if len(r[i]) > keep + 1:
            r[i], cut = r[i][:keep] + "…", True
    return cut


def _terminal_columns() -> int | None:
    """The terminal's width, or None when the output goes to a pipe or a file
    (which then gets every column whole)."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def run(args: argparse.Namespace) -> int:
    con = correlator.connect(args.data)
    try:
        if args.since is not None and not read_retrying(lambda: _runs_judged(con)):
            # none judged yet: every run shows in flight, so each is listed however old
            args = argparse.Namespace(**{**vars(args), "since": None})
        rows, judged = read_retrying(lambda: _read(con, args))
        filtered = bool(args.status or args.workflow_type)
        # what the filter left out, to say so instead of printing nothing
        in_store = (
            read_retrying(lambda: workflow_counts(con, since=window_begins(args.since)))
            if filtered and not rows
            else {}
        )
    finally:
        con.close()
    judged = judged or read_last_pass(StoreLayout.at(args.data)) is not None
    if not rows:
        print(_nothing_listed(args, in_store, judged=bool(judged)))
        return 0
    now = dt.datetime.now(dt.UTC)
    table = [
        (
            wf,
            status,
            wf_type or "-",
            f"{ago((now - started).total_seconds())} ago",
            ago((duration or 0) / 1000),  # first to last activity
            # how long a run that is not done has been quiet: "stuck for"
            "-" if status == "completed" else ago((now - last).total_seconds()),
            waiting or "-",
            cause or "-",
            str(services),
        )
        for wf, status, wf_type, started, duration, last, waiting, cause, services in rows[
            : args.limit
        ]
    ]
    headers = ("workflow", "status", "type", "started", "ran for", "quiet for", "waiting on",
               "cause", "svcs")  # fmt: skip
    columns = _terminal_columns()
    ids_cut = False
    if columns is not None:
        headers, table, ids_cut = fit_table(headers, table, width=columns)
    print(render_table(headers, table))
    if ids_cut:
        print(
            "\n(ids cut to fit: `choreoscope show` takes them as shown; piped, the table\n"
            " has every column whole)"
        )
    if len(rows) > args.limit:
        print(f"\n(the first {args.limit}: --limit N shows more)")
    if not judged:
        print("\n(no correlator findings yet: run `choreoscope correlate --once` to judge them)")
    return 0


NOT_JUDGED = (
    "the correlator has judged none: run `choreoscope correlate --once`; if the\n"
    "store holds no spans yet, run your services with `choreoscope collect`, or try\n"
    "`choreoscope demo`"
)


def _nothing_listed(
    args: argparse.Namespace,
    in_store: dict[tuple[str, str | None], int],
    *,
    judged: bool,
) -> str:
    """Why the table is empty: what the filters left out of how many runs, or that
    the store holds no run (yet), and what to run next."""
    total = sum(in_store.values())
    window = args.since is not None
    where = f"active in the last {window_text(args.since)} or stuck" if window else "in the store"
    # (a window is kept only once some run is judged: see run)
    if not total and window:
        return (
            f"no workflows active in the last {window_text(args.since)}, and none stalled or in "
            "flight: `--since 7d` or `--since all` looks further back"
        )
    if not total:
        if judged:  # the correlator ran, and found no run in the store
            return (
                "no workflows yet: the store holds no spans of a run; run your services "
                "with `choreoscope collect`, or try `choreoscope demo`"
            )
        return f"no workflows yet\n\n({NOT_JUDGED})"
    types = sorted({t for _, t in in_store if t})
    if args.workflow_type and args.workflow_type not in types:
        return f"no workflows of type {args.workflow_type!r}; the types {where}: {', '.join(types)}"
    statuses = " or ".join(args.status or ()) + " " if args.status else ""
    of_type = f" of type {args.workflow_type!r}" if args.workflow_type else ""
    by_status: dict[str, int] = {}
    for (status, _), n in in_store.items():
        by_status[status] = by_status.get(status, 0) + n
    breakdown = ", ".join(f"{by_status[s]} {s}" for s in WORKFLOW_STATUSES if s in by_status)
    text = (
        f"no {statuses}workflows{of_type}; {total} workflow{'' if total == 1 else 's'} "
        f"{where} ({breakdown})"
    )
    if window:
        text += "; `--since all` counts the whole store"
    if not judged:
        text += (
            "\n\n(the correlator has judged none yet, so none shows as stalled or failed:\n"
            "run `choreoscope correlate --once`)"
        )
    return text


def _positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _read(con: duckdb.DuckDBPyConnection, args: argparse.Namespace) -> tuple[list[tuple], int]:
    """The runs to list, as the dashboard's Workflows page lists them (stuck first,
    then the latest active), and how many workflows the correlator has judged."""
    frame = list_workflows(
        con,
        since=window_begins(args.since),
        statuses=tuple(args.status or ()),
        workflow_type=args.workflow_type,
        limit=args.limit + 1,  # one more than shown: whether there are more to show
    )
    judged = _runs_judged(con)
    frame = frame.astype(object).where(frame.notna(), None)  # a missing value: None, not NaN
    rows = [
        (r.workflow_id, r.status, r.workflow_type, r.started_at, r.duration_ms,
         r.last_activity_at, r.waiting_on, r.root_cause, len(r.services))
        for r in frame.itertuples(index=False)
    ]  # fmt: skip
    return rows, judged


def _runs_judged(con: duckdb.DuckDBPyConnection) -> int:
    """How many workflows the correlator has judged (the windowed listing reaches the
    old runs only through their judged status)."""
    (judged,) = con.execute("SELECT count(*) FROM workflow_status").fetchone()
    return int(judged)
