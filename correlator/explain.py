"""Findings into anomalies a user reads: a stable id and an explanation.

stalled at `scorer`: `recruit.cv.parsed` msg 7f3a9c…b02e41 published at 12:58:50 UTC by
`parser`, never received by consumer group `scorer` (dropped)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable
from typing import Any

import orjson

# Fields that make one fault one anomaly, whatever pass finds it.
_IDENTITY = ("kind", "root_cause", "workflow_id", "message_id", "consumer", "service", "instance")


def anomaly_id(finding: dict[str, Any]) -> str:
    identity = _IDENTITY
    if finding["kind"] == "telemetry_gap" and finding.get("workflow_id"):
        identity = ("kind", "workflow_id", "service")  # one gap per service and workflow
    parts = [str(finding.get(k) or "") for k in identity]
    if finding.get("root_cause") == "service_silent":
        parts.append(str(finding.get("last_seen")))  # each silence is its own episode
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:20]


def ago(seconds: float | None) -> str:
    """``250 ms``, ``42 s``, ``4 min``, ``2.5 h``, ``9.4 days``: how long, for a sentence."""
    if seconds is None or math.isnan(seconds):
        return "some time"
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _unit(limit_s: float) -> tuple[str, float]:
    """The unit a limit reads best in, and seconds' factor into it."""
    if limit_s < 1:
        return "ms", 1000.0
    if limit_s < 120:
        return "s", 1.0
    if limit_s < 7200:
        return "min", 1 / 60
    return "h", 1 / 3600


def limit(seconds: float | None) -> str:
    """A deadline or an SLA as declared, unrounded: ``1.5 s``, ``6 ms``, ``5 min``
    (``ago`` made an SLA of 1.5 s "2 s", which a step that took 1.7 s was "past")."""
    if seconds is None or math.isnan(seconds):
        return "some time"
    unit, factor = _unit(seconds)
    return f"{round(seconds * factor, 3):g} {unit}"


def past(seconds: float, limit_s: float) -> str:
    """How long something took that overran ``limit_s``, in the limit's unit and with
    as many decimals as it takes to read above it (``2.05 s`` past ``2 s``): "took
    0.0 s, past its SLA of 6 ms" read as if nothing had overrun."""
    unit, factor = _unit(limit_s)
    if _unit(seconds)[0] != unit:  # far apart (20.9 s past 402 ms): each reads alone
        return took(seconds)
    bar = round(limit_s * factor, 3)
    for decimals in range(0 if seconds * factor >= 10 else 1, 4):
        text = f"{seconds * factor:.{decimals}f}"
        if float(text) > bar:
            break
    return f"{text} {unit}"


def took(seconds: float) -> str:
    """A measured duration, sub-second ones in ms: ``3.4 ms``, ``250 ms``, ``3.5 s``."""
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 90:
        return f"{seconds:.1f} s"
    return ago(seconds)


def short(message_id: str | None) -> str:
    """A message id as explanations and the dashboard's timeline both write it: its
    first and last six characters (ids that differ only at one end stay apart)."""
    if not message_id:
        return "(no id)"
    return message_id if len(message_id) <= 14 else f"{message_id[:6]}…{message_id[-6:]}"


def _when(f: dict[str, Any], key: str = "since") -> str:
    """``at 12:58:50 UTC``: explanations are stored, so they name clock times rather
    than "4 min ago", which would read stale as soon as the finding is a minute old."""
    return f"at {_clock(f, key)}"


def _clock(f: dict[str, Any], key: str) -> str:
    """``12:58:50 UTC``, the time ``f[key]`` says (``since 12:58:50 UTC``)."""
    at = f.get(key)
    if not isinstance(at, dt.datetime):
        return "an unknown time"
    return f"{at.astimezone(dt.UTC):%H:%M:%S} UTC"


def _msg(f: dict[str, Any]) -> str:
    return f"`{f.get('subject')}` msg {short(f.get('message_id'))}"


def _dropped(f: dict[str, Any], now: dt.datetime) -> str:
    by = f" by `{f['producer_service']}`" if f.get("producer_service") else ""
    published = f"published {_when(f)}{by}"
    if f.get("producer_seen") is False:  # handled by another group: its publish span is missing
        published = f"first seen {_when(f)} (its publish span never arrived)"
    if f.get("replayed_at"):  # dead-lettered, then published again: owed from the replay
        by = f" by `{f['replayed_by']}`" if f.get("replayed_by") else ""
        published = f"dead-lettered, then published again {_when(f, 'replayed_at')}{by}"
    return (
        f"stalled at `{f['service']}`: {_msg(f)} {published}, "
        f"never received by consumer group `{f['consumer']}` (dropped: deadline "
        f"{limit(f.get('deadline_s'))})"
    )


def _hung(f: dict[str, Any], now: dt.datetime) -> str:
    where = f" on `{f['receiving_instance']}`" if f.get("receiving_instance") else ""
    ended = "has not finished"
    if f.get("state") == "overran":
        ended = f"ran past its deadline before it was stopped ({f.get('last_error') or 'error'})"
    # instrumentations without a receive span: the attempt that overran dates it
    began = (
        f"received {_msg(f)} {_when(f, 'last_received_at')}"
        if f.get("last_received_at") or not f.get("last_overrun_start")
        else f"started on {_msg(f)} {_when(f, 'last_overrun_start')}"
    )
    return (
        f"stalled at `{f['service']}`: its handler {began}{where} and {ended} "
        f"(hung: deadline {limit(f.get('deadline_s'))})"
    )


# What a finding's explanation reads that can still change once it was told, per kind.
# A dead letter's advisory reaches the collector at once, while the spans of the attempt
# that ended it (and of the deliveries before it) wait in their exporter's batch: told
# on the advisory, it counted one failed attempt fewer than the store shows a tick
# later (the ledger tells it again).
LATE_FACTS: dict[str, tuple[str, ...]] = {
    "dead_lettered": ("dead_letter_source", "errors", "last_error", "receives", "attempts"),
}


def _dead_lettered(f: dict[str, Any], now: dt.datetime) -> str:
    how = {
        "max_deliveries": " (past its max deliveries)",
        "terminated": " (terminated)",
        "dead_letter_subject": " (republished to the dead-letter subject)",
        "term": " (terminated by its handler)",
    }.get(f.get("dead_letter_source") or "", "")
    received, finished = f.get("receives") or 0, f.get("attempts") or 0
    if received and not finished:
        # a handler that hung at every delivery (its deadline at or above the ack wait:
        # each redelivery began its wait again): "was dead-lettered" alone hid that no
        # attempt ever ended
        times, each = ("once", "that time") if received == 1 else (f"{received} times", "each time")
        return (
            f"stalled at `{f['service']}`: {_msg(f)} was received {times}, no attempt "
            f"finished (the handler hung {each}); dead-lettered{how}"
        )
    tries = f" after {_count(f['errors'], 'failed attempt')}" if f.get("errors") else ""
    # some deliveries ended in an attempt, and the others hung
    hung = (
        f"; {received - finished} of its {received} deliveries never finished (the handler hung)"
        if received > finished
        else ""
    )
    err = f"; last error: {f['last_error']}" if f.get("last_error") else ""
    return f"stalled at `{f['service']}`: {_msg(f)} was dead-lettered{how}{tries}{hung}{err}"


def _failed(f: dict[str, Any], now: dt.datetime) -> str:
    if not f.get("errors") and f.get("given_back"):
        # its handler returned, but nak'ed the message: no attempt raised
        return (
            f"failed at `{f['service']}`: its handler took {_msg(f)} and gave it back "
            f"(nak) {_when(f, 'last_attempt_end')}, and no redelivery came within "
            f"{ago(f.get('waited_s'))}"
        )
    err = f": {f['last_error']}" if f.get("last_error") else ""
    errors = f.get("errors") or 1
    attempts = "its only attempt" if errors == 1 else f"all {errors} attempts"
    last = f", the last {_when(f, 'last_attempt_end')}" if errors > 1 else ""
    return (
        f"failed at `{f['service']}`: {attempts} to process {_msg(f)} raised{last}, "
        f"and no retry came within {ago(f.get('waited_s'))}{err}"
    )


def _stalled(f: dict[str, Any], now: dt.datetime) -> str:
    if f.get("root_cause") == "no_next_event":
        return (
            f"stalled after `{f['subject']}`: it was handled {_when(f)}, but the "
            f"`{f.get('workflow_type')}` workflow never reached a terminal event"
        )
    if f.get("root_cause") == "backlog":
        return (
            f"stalled at `{f['service']}`: {_msg(f)} published {_when(f)} waits in the "
            f"backlog of consumer group `{f['consumer']}`: JetStream held "
            f"{_count(f.get('consumer_backlog') or 0, 'message')} for it at "
            f"{_clock(f, 'backlog_sampled_at')}, and `{f['service']}` is up but has not "
            f"got to it within the step's deadline ({limit(f.get('deadline_s'))})"
        )
    down = (
        f"no heartbeat since {_clock(f, 'consumer_last_seen')}"
        if f.get("consumer_last_seen")
        else "its heartbeats stopped"
    )
    if f.get("consumer_back_at"):
        return (
            f"stalled at `{f['service']}`: {_msg(f)} published {_when(f)} "
            f"waited on consumer group `{f['consumer']}` through an outage; it is back "
            f"since {_clock(f, 'consumer_back_at')} and still working off its backlog"
        )
    gone = (
        f"stopped at {_clock(f, 'consumer_last_seen')} (its last heartbeat said so)"
        if f.get("consumer_stopped") and f.get("consumer_last_seen")
        else f"is down ({down})"
    )
    holder = f" (`{f['receiving_instance']}`)" if f.get("receiving_instance") else ""
    holder_fate = (
        f"restarted since, at {_clock(f, 'receiver_restarted_at')}: the handler died "
        "with it, and no redelivery has come"
        if f.get("receiver_restarted_at")
        else gone
    )
    state = (
        f"was received {_when(f, 'last_received_at')}, and the instance holding it{holder} "
        f"{holder_fate}"
        if f.get("state") == "received"
        else f"published {_when(f)} waits on consumer group `{f['consumer']}`, which {gone}"
    )
    backlog = f.get("consumer_backlog")
    held = f"; JetStream holds {_count(backlog, 'message')} for it" if backlog else ""
    return f"stalled at `{f['service']}`: {_msg(f)} {state}{held}"


def _duplicate(f: dict[str, Any], now: dt.datetime) -> str:
    return (
        f"{_msg(f)} was processed {f.get('successes')} times by consumer group "
        f"`{f['consumer']}` (duplicate)"
    )


def _orphan(f: dict[str, Any], now: dt.datetime) -> str:
    return (
        f"`{f['service']}` handled {_msg(f)} {_when(f)}, but the producer's publish span "
        "never arrived: an uninstrumented producer, or lost spans"
    )


def _telemetry_gap(f: dict[str, Any], now: dt.datetime) -> str:
    if f.get("root_cause") == "service_silent":
        return (
            f"`{f['service']}` went silent: no heartbeat since "
            f"{_clock(f, 'last_seen')} (it sends one every {ago(f.get('interval_s'))}); "
            "findings that depend on its spans may be incomplete"
        )
    if f.get("workflow_id") and f.get("state") in ("received", "unreceived"):
        seen = (
            f"received {_when(f, 'last_received_at')}"
            if f["state"] == "received"
            else f"was published {_when(f)}"
        )
        return (
            f"telemetry gap at `{f['service']}`: {_msg(f)} {seen} "
            f"with no sign of its processing since, but `{f['service']}` "
            f"dropped {f.get('spans_dropped')} spans meanwhile: its spans are missing, the "
            "workflow may well be fine"
        )
    if f.get("workflow_id"):
        return (
            f"telemetry gap at `{f['service']}`: {_msg(f)} was handled by `{f['consumer']}`, "
            f"but its publish span is missing and `{f['service']}` reported dropping "
            f"{f.get('spans_dropped')} spans: the trace is incomplete, the workflow is not "
            "broken"
        )
    instance = f" (instance {f['instance']})" if f.get("instance") else ""
    return (
        f"`{f['service']}`{instance} reported {f.get('spans_dropped')} spans dropped by its "
        "exporter: findings that depend on its spans may be incomplete"
    )


def _slow(f: dict[str, Any], now: dt.datetime) -> str:
    seconds = (f.get("latency_ms") or 0) / 1000
    queued, processing = (
        took((f.get(key) or 0) / 1000) for key in ("queue_wait_ms", "processing_ms")
    )
    parts = f"queue {queued} + processing {processing}"
    if f.get("retried_attempts"):
        # the time went to attempts that failed and the backoff before the retry, not to a
        # queue: "queue 21 s" sent the user looking for a backlog that never was
        parts = (
            f"{_count(f['retried_attempts'], 'attempt')} failed or given back first; the one "
            f"that succeeded began {queued} after the publish and took {processing}"
        )
    if f.get("sla_s"):
        total, bar = past(seconds, f["sla_s"]), f"past its SLA of {limit(f['sla_s'])}"
    else:
        p95_s = (f.get("p95_ms") or 0) / 1000
        total, bar = past(seconds, p95_s), f"its usual p95 is {limit(p95_s)}"
    return f"slow at `{f['service']}`: {_msg(f)} took {total} from publish to done ({parts}), {bar}"


def _deviation(f: dict[str, Any], now: dt.datetime) -> str:
    after = f"after `{f['from_subject']}`" if f.get("from_subject") else "as a first event"
    rule = "its declared choreography" if f.get("declared") else "the learned choreography"
    why = f": nothing may follow `{f['from_subject']}`" if f.get("closed") else ""
    if f.get("declared") and not f.get("closed") and f.get("allowed"):
        expected = " or ".join(f"`{s}`" for s in f["allowed"])
        why = (
            f" (it expects {expected} {after})"
            if f.get("from_subject")
            else (f" (its runs start with {expected})")
        )
    return (
        f"deviation: `{f.get('service')}` published `{f['subject']}` {after} in this "
        f"`{f.get('workflow_type')}` workflow, which {rule} does not allow{why}"
    )


# in DESIGN.md's order, which the dashboard's filters follow
def _count(n: int, noun: str) -> str:
    """``1 message``, ``3 messages``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


_EXPLAIN: dict[str, Callable[[dict[str, Any], dt.datetime], str]] = {
    "stalled": _stalled,
    "dropped": _dropped,
    "hung": _hung,
    "dead_lettered": _dead_lettered,
    "failed": _failed,
    "duplicate": _duplicate,
    "orphan": _orphan,
    "deviation": _deviation,
    "telemetry_gap": _telemetry_gap,
    "slow": _slow,
}

ANOMALY_KINDS = tuple(_EXPLAIN)
"""Every kind of anomaly the correlator reports."""


def explain(finding: dict[str, Any], *, now: dt.datetime) -> str:
    return _EXPLAIN[finding["kind"]](finding, now)


def anomaly_row(
    finding: dict[str, Any], *, now: dt.datetime, key: str | None = None
) -> dict[str, Any]:
    """A row of the ``anomalies`` findings file, first detected ``now``; ``key`` is
    its ``anomaly_id`` when the caller has it already."""
    # orjson: a fifth of the time of the json module, which made explaining a cold
    # pass's anomalies a noticeable part of it. Datetimes as ISO 8601, NaN as null.
    evidence = orjson.dumps(
        {k: v for k, v in finding.items() if v is not None},
        option=orjson.OPT_SORT_KEYS,
        default=str,
    ).decode()
    return {
        "anomaly_id": key or anomaly_id(finding),
        "kind": finding["kind"],
        "workflow_id": finding.get("workflow_id"),
        "workflow_type": finding.get("workflow_type"),
        "trace_id": finding.get("trace_id"),
        "service": finding.get("service"),
        "subject": finding.get("subject"),
        "message_id": finding.get("message_id"),
        "step": finding.get("step"),
        "consumer": finding.get("consumer"),
        "root_cause": finding.get("root_cause"),
        "detected_at": now,
        "resolved_at": None,
        "alerted_at": None,
        "webhook_at": None,
        "detail": explain(finding, now=now),
        "evidence": evidence,
    }
