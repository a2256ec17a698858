"""When the correlator last judged the store: ``<data>/findings/last_pass.json``.

A watcher rewrites it every few seconds and once more when it stops; ``correlate
--once`` writes it once. Readers tell from it how old the statuses are: a watcher
that stopped leaves runs "in flight" and their waiting times growing, and nothing
else shows it. The next correlator resumes from it (resume.py): ``judged_with``
says what the verdicts were judged with, which must not have changed.
``min_deadline_s`` is the floor under learned step deadlines that pass judged with:
``choreoscope model`` learns with it too when not told another, so that the file it
writes judges as the correlator did. ``choreography`` is the declared file it judged
with: a later command that declares none names it.

While a cold pass runs (minutes, on a week of spans), ``note_judging`` keeps the
last pass as it was and adds since when the correlator has been judging again,
noted again every ``PROGRESS_EVERY_S``: readers then say that it works, rather than
that it stopped. A note not renewed for long is a correlator that died meanwhile.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass

from store.layout import StoreLayout

log = logging.getLogger(__name__)

FILE_NAME = "last_pass.json"
EVERY_S = 5.0  # how often a watcher rewrites it


@dataclass(frozen=True)
class LastPass:
    as_of: dt.datetime  # the instant the pass judged the store as of
    watching: bool  # a watcher wrote it, and had not stopped
    judged_with: str | None = None  # the fingerprint of the settings it judged with
    judging_since: dt.datetime | None = None  # a cold pass running since (note_judging)
    noted_at: dt.datetime | None = None  # when this was written (the wall clock)
    judging_failures: int = 0  # how often that cold pass failed, and was tried again
    min_deadline_s: float | None = None  # the floor under learned step deadlines it used
    choreography: str | None = None  # the declared choreography.yaml it judged with


def write_last_pass(
    layout: StoreLayout,
    *,
    as_of: dt.datetime,
    watching: bool,
    judged_with: str | None = None,
    judging_since: dt.datetime | None = None,
    noted_at: dt.datetime | None = None,
    judging_failures: int = 0,
    min_deadline_s: float | None = None,
    choreography: str | None = None,
) -> None:
    """Record a pass. Not fsynced (a marker lost to a crash only reads as older), and
    a store that refuses it is logged, never raised: it must not stop a watcher."""
    path = layout.findings / FILE_NAME
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    record = {
        "as_of": as_of.isoformat(),
        "watching": watching,
        "judged_with": judged_with,
        "judging_since": judging_since.isoformat() if judging_since else None,
        "noted_at": (noted_at or dt.datetime.now(dt.UTC)).isoformat(),
        "judging_failures": judging_failures,
        "min_deadline_s": min_deadline_s,
        "choreography": choreography,
    }
    try:
        tmp.write_text(json.dumps(record))
        tmp.replace(path)
    except OSError as e:
        log.warning("could not record the correlator's last pass in %s: %s", path, e)
        tmp.unlink(missing_ok=True)


def read_last_pass(layout: StoreLayout) -> LastPass | None:
    """The last pass recorded, or None (no correlator recorded one, or unreadable)."""
    try:
        raw = json.loads((layout.findings / FILE_NAME).read_text())
        as_of = dt.datetime.fromisoformat(raw["as_of"])
        judged_with = raw.get("judged_with")
        return LastPass(
            as_of=as_of.astimezone(dt.UTC),
            watching=bool(raw["watching"]),
            judged_with=judged_with if isinstance(judged_with, str) else None,
            judging_since=_instant(raw.get("judging_since")),
            noted_at=_instant(raw.get("noted_at")),
            judging_failures=_count(raw.get("judging_failures")),
            min_deadline_s=_seconds(raw.get("min_deadline_s")),
            choreography=raw.get("choreography")
            if isinstance(raw.get("choreography"), str)
            else None,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def note_judging(layout: StoreLayout, *, since: dt.datetime, failures: int = 0) -> None:
    """Add to the last pass recorded that a cold pass has been running ``since`` (the
    wall clock; its first attempt, when ``failures`` made it try again), noted now;
    the pass's own record replaces it once it is done. Nothing when no pass was
    recorded yet (no statuses to be old)."""
    last = read_last_pass(layout)
    if last is not None:
        write_last_pass(
            layout,
            as_of=last.as_of,
            watching=last.watching,
            judged_with=last.judged_with,
            judging_since=since,
            judging_failures=failures,
            min_deadline_s=last.min_deadline_s,
            choreography=last.choreography,
        )


def stop_judging(layout: StoreLayout) -> None:
    """Take back ``note_judging``'s note: the cold pass stopped without a record of its
    own (told to stop, or failed), so readers say at once that nothing judges."""
    last = read_last_pass(layout)
    if last is not None and last.judging_since is not None:
        write_last_pass(
            layout,
            as_of=last.as_of,
            watching=last.watching,
            judged_with=last.judged_with,
            min_deadline_s=last.min_deadline_s,
            choreography=last.choreography,
        )


def _instant(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _seconds(value: object) -> float | None:
    """A positive duration in seconds, or None (absent: written before it was recorded)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return None
    return float(value)
