"""Where a cold pass resumes from: the verdicts an earlier pass left behind.

A running watcher never judges again a workflow quiet for longer than ``keep_s``:
it keeps its last verdict. A cold pass that follows an earlier one (a watcher
restarted, ``correlate --once`` run again) does the same, instead of judging every
span stored again, which on a store of a few hours at 1k spans/s took minutes and
more memory than a small machine has (10M spans: 20 s and 5.8 GB). It judges only
the workflows with spans in the hour partitions from ``Resume.since`` on (whole:
their older spans are read too, stored_spans.py) and carries over the verdicts of
the others from the status files (verdicts.py). A watcher goes on with the model
the earlier pass judged with (``correlate --once`` learns it again from every span,
as it never learns beside). It resumes only from a pass that judged with the same
settings and correlator (``judged_with``): with another choreography, other
thresholds or an upgrade, every workflow is judged again. To judge every span again
anyway, remove ``<data>/findings/last_pass.json``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from importlib import metadata, resources
from typing import Final

import duckdb

from correlator.declared_choreography import Choreography
from correlator.findings_files import current_file
from correlator.last_pass import read_last_pass
from correlator.model import ChoreographyModel, read_written_model
from correlator.thresholds import Thresholds
from store import StoreLayout

log = logging.getLogger(__name__)

# judged again besides keep_s and recent_s: a span is filed by when the collector got
# it, which trails the clocks of the hosts that made it
MARGIN: Final = dt.timedelta(minutes=10)


def judged_with(*, thresholds: Thresholds, choreography: Choreography | None, keep_s: float) -> str:
    """A fingerprint of what a pass's verdicts depend on besides the spans: the
    settings, and the correlator's own version and SQL (an upgrade that judges
    otherwise judges every run again)."""
    settings = {
        "thresholds": thresholds.sql_parameters(),
        "choreography": repr(choreography),
        "keep_s": keep_s,
        "correlator": _correlator_fingerprint(),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@functools.cache
def _correlator_fingerprint() -> str:
    digest = hashlib.sha256(_package_version().encode())
    for folder in JUDGING_SQL:
        root = resources.files("correlator") / folder
        for sql in sorted((f for f in root.iterdir() if f.name.endswith(".sql")), key=str):
            digest.update(sql.name.encode() + sql.read_bytes())
    return digest.hexdigest()


def _package_version() -> str:
    try:
        return metadata.version("choreoscope")
    except metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


@dataclass(frozen=True)
class Resume:
    since: dt.datetime  # the start of the oldest hour partition judged again
    # segments written since are judged too, whatever their hour: a collector whose
    # clock runs behind files what it receives in hours older than ``since``
    written_since: dt.datetime
    model: ChoreographyModel  # the model the earlier pass judged with


def resume_point(
    con: duckdb.DuckDBPyConnection,
    *,
    layout: StoreLayout,
    now: dt.datetime,
    fingerprint: str,
    reach_s: float,
) -> Resume | None:
    """Where a cold pass resumes, or None to judge every span: no earlier pass
    recorded, one that judged with other settings, status files without a verdict (a
    first pass, or files set aside as damaged), or no model written with them.
    ``reach_s``: how long before the earlier pass a workflow may have been active and
    still open then."""
    last = read_last_pass(layout)
    if last is None or last.judged_with != fingerprint:
        return None
    files = [str(f) for f in map(functools.partial(current_file, layout), STATUS_FILES) if f]
    if not files:
        return None
    try:
        (verdicts, newest) = con.execute(
            "SELECT count(*), max(evaluated_at) FROM read_parquet($files, union_by_name = true)",
            {"files": files},
        ).fetchone()
    except duckdb.Error as e:  # unreadable: judged again from the spans
        log.warning("the workflow statuses cannot be read (%s): judging every span again", e)
        return None
    model = read_written_model(layout)
    if not verdicts or model is None:
        return None
    # the statuses written last may trail the recorded pass (a write that failed)
    as_of = min(last.as_of, newest, now)
    since = as_of - dt.timedelta(seconds=reach_s) - MARGIN
    return Resume(
        since=since.replace(minute=0, second=0, microsecond=0),
        written_since=as_of - MARGIN,
        model=model,
    )


STATUS_FILES: Final = ("workflow_status", "workflow_status_recent")
# the statements verdicts come from (correlator/<folder>/*.sql)
JUDGING_SQL: Final = ("sql", "learn_sql", "detect_sql")
