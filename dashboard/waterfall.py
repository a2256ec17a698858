"""The waterfall of one workflow: each hop's queue wait and processing, and the stall.

Drawn from the correlator's ``hops`` (one row per processing attempt) and
``messages`` (how each message ended). Queue wait is a pale bar, processing a
solid one (red when the attempt raised, purple when its handler gave the message
back with a nak or a term: it processed nothing), each retry its own row, its wait
beginning where the attempt before it ended; a message no
consumer started processing gets a dashed bar running toward the end of the view,
and the point where the workflow stopped is marked. A short run is drawn in
milliseconds from its start (waterfall_axis.py).
"""

from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd

from correlator.explain import short
from correlator.queries import awaited_by
from dashboard.charts import utc_tooltip, with_utc_text
from dashboard.waterfall_axis import WaterfallAxis

PHASES = {
    "queue wait": "#b9d3ee",
    "processing": "#1f77b4",
    "failed attempt": "#d62728",
    "given back": "#9467bd",
    "never processed": "#e69f00",
}
STALL_LABEL = "stalled here"
HOP_FORMAT = "%H:%M:%S.%f"  # a phase's start and end, in tooltips (microseconds)
ATTEMPTS = ("processing", "failed attempt", "given back")
# an attempt of a millisecond on a chart of seconds was under a pixel wide: five
# failed attempts drew no red at all. Each is drawn at least this share of the
# chart's span wide (its tooltip keeps its true start and end)
MIN_ATTEMPT_SHARE = 0.006


def waterfall_rows(
    hops: pd.DataFrame, messages: pd.DataFrame, *, view_end: dt.datetime
) -> pd.DataFrame:
    """Long-form bars: ``order, row, phase, start, end, message_id, attempt``."""
    bars: list[dict[str, object]] = []
    previous_end: dict[tuple[object, object], pd.Timestamp] = {}
    for hop in hops.sort_values(["started_at", "attempt"]).itertuples(index=False):
        row = _row_label(hop.subject, hop.consumer_service, hop.message_id, int(hop.attempt))
        common = {"row": row, "message_id": hop.message_id, "attempt": int(hop.attempt)}
        # a redelivery waited from the end of the attempt before it, not from the
        # publish: drawn from the publish, every retry's wait covered the attempts
        # before it and began at 0
        key = (hop.message_id, hop.consumer_service)
        waited_from = previous_end.get(key, hop.published_at)
        if pd.notna(hop.ended_at):
            previous_end[key] = hop.ended_at
        if pd.notna(waited_from):
            bars.append(
                {**common, "phase": "queue wait", "start": waited_from, "end": hop.started_at}
            )
        bars.append(
            {
                **common,
                "phase": _attempt_phase(hop),
                "start": hop.started_at,
                "end": hop.ended_at,
            }
        )
    attempted = {
        (hop.message_id, getattr(hop, "consumer", hop.consumer_service))
        for hop in hops.itertuples(index=False)
    }
    drawn_until = max((b["end"] for b in bars if pd.notna(b["end"])), default=None)
    drawn_from = min((b["start"] for b in bars if pd.notna(b["start"])), default=None)
    for message in messages.itertuples(index=False):
        if pd.isna(message.published_at):
            continue  # its publish span never arrived: nothing to place it by
        waited = pd.Timestamp(view_end) - message.published_at
        for awaited in _awaited_by(message, attempted):
            bars.append(
                {
                    "row": _row_label(message.subject, awaited, message.message_id, 1),
                    "message_id": message.message_id,
                    "attempt": 0,
                    "phase": "never processed",
                    "start": message.published_at,
                    "end": _clipped_end(message.published_at, view_end, drawn_from, drawn_until),
                    "note": f"waiting for {_humane(waited)}",
                }
            )
    frame = pd.DataFrame(
        bars, columns=["row", "message_id", "attempt", "phase", "start", "end", "note"]
    ).dropna(subset=["start", "end"])
    first_start = frame.groupby("row", sort=False)["start"].transform("min")
    return frame.assign(order=first_start.rank(method="dense")).sort_values(["order", "start"])


def _attempts_visible(rows: pd.DataFrame, *, stall_at: dt.datetime | None) -> pd.DataFrame:
    """``rows`` with each attempt's bar ending at least ``MIN_ATTEMPT_SHARE`` of the
    chart's span after it starts (the tooltip's times, already written, stay true)."""
    if rows.empty:
        return rows
    last = rows["end"].max()
    if stall_at is not None:
        last = max(last, pd.Timestamp(stall_at))
    shortest = (last - rows["start"].min()) * MIN_ATTEMPT_SHARE
    attempts = rows["phase"].isin(ATTEMPTS)
    widened = rows["end"].where(~attempts, rows["end"].clip(lower=rows["start"] + shortest))
    return rows.assign(end=widened)


def _attempt_phase(hop: object) -> str:
    if getattr(hop, "status_code", None) == "error":
        return "failed attempt"
    if isinstance(getattr(hop, "given_back", None), str):
        return "given back"  # a nak or a term: no processing, though it did not raise
    return "processing"


def _awaited_by(message: object, attempted: set[tuple[object, object]]) -> list[str]:
    """Row targets of the bars a message still waits under: one per expected consumer
    group that never attempted it (``awaited_by``, as ``choreoscope show`` says it).
    Before a model is known, a message nobody attempted waits on "no consumer yet"."""
    if not getattr(message, "model_known", False):
        message_id = getattr(message, "message_id", None)
        nobody = not any(m == message_id for m, _ in attempted)
        waiting = getattr(message, "outcome", None) != "processed" and nobody
        return ["no consumer yet"] if waiting else []
    return awaited_by(message, attempted=attempted)


def _clipped_end(
    published: pd.Timestamp,
    view_end: dt.datetime,
    drawn_from: pd.Timestamp | None,
    drawn_until: pd.Timestamp | None,
) -> pd.Timestamp:
    """Where a waiting bar stops: at the view's end, unless that would squash the hops.

    A message waiting for ten minutes after a two-second workflow would shrink every
    other bar to a sliver; its bar is cut to as long as the hops before it took
    (half the chart), and labelled with how long it has waited.
    """
    end = pd.Timestamp(view_end)
    if drawn_from is None or drawn_until is None:
        return end
    room = max(pd.Timedelta(milliseconds=50), drawn_until - min(published, drawn_from))
    return min(end, max(drawn_until, published) + room)


def _humane(delta: pd.Timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _row_label(subject: str, consumer: str | None, message_id: str, attempt: int) -> str:
    target = consumer if consumer else "no consumer"
    label = f"{subject} → {target} · msg {short(str(message_id))}"  # as explanations say
    return label + (f" · attempt {attempt}" if attempt > 1 else "")


def waterfall_chart(rows: pd.DataFrame, *, stall_at: dt.datetime | None) -> alt.LayerChart:
    """Bars per phase on a shared time axis, with the stall point marked when given."""
    order = rows.drop_duplicates("row").sort_values("order")["row"].tolist()
    axis = WaterfallAxis.for_rows(rows, stall_at=stall_at)
    rows = with_utc_text(with_utc_text(rows, "start", HOP_FORMAT), "end", HOP_FORMAT)
    rows = axis.placed(_attempts_visible(rows, stall_at=stall_at), "start", "end")
    bars = (
        alt.Chart(rows)
        .mark_bar(height={"band": 0.7})
        .encode(
            y=alt.Y("row:N", sort=order, title=None, axis=alt.Axis(labelLimit=420)),
            x=axis.x("start"),
            x2=axis.field("end"),
            color=alt.Color(
                "phase:N",
                scale=alt.Scale(domain=list(PHASES), range=list(PHASES.values())),
                legend=alt.Legend(orient="top", title=None),
            ),
            strokeDash=alt.condition(
                alt.datum.phase == "never processed", alt.value([4, 3]), alt.value([1, 0])
            ),
            stroke=alt.value("#7f7f7f"),
            tooltip=[
                "row:N",
                "phase:N",
                utc_tooltip("start"),
                utc_tooltip("end"),
                "attempt:Q",
                "note:N",
            ],
        )
    )
    notes = (
        alt.Chart(rows[rows["note"].notna()])
        .mark_text(align="right", dx=-4, color="#7a4f00", fontWeight="bold")
        .encode(y=alt.Y("row:N", sort=order), x=axis.field("end"), text="note:N")
    )
    layers: list[alt.Chart] = [bars, notes]
    if stall_at is not None:
        marker = axis.placed(
            pd.DataFrame({"at": [pd.Timestamp(stall_at)], "label": [STALL_LABEL]}), "at"
        )
        rule = (
            alt.Chart(marker).mark_rule(color="#e69f00", strokeWidth=2).encode(x=axis.field("at"))
        )
        text = (
            alt.Chart(marker)
            .mark_text(align="left", dx=4, dy=-6, color="#e69f00", fontWeight="bold")
            .encode(x=axis.field("at"), y=alt.value(0), text="label:N")
        )
        layers += [rule, text]
    return alt.layer(*layers).properties(height=alt.Step(30))
