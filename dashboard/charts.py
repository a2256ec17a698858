"""Charts of the Overview page (Altair, drawn by the browser; data rendered as text)."""

from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd

STATUS_COLORS = {
    "completed": "#4c9a2a",
    "in_flight": "#4a90d9",
    "stalled": "#e69f00",
    "failed": "#d62728",
}
# an anomaly still open is drawn solid, one resolved since faded (anomalies_chart)
STATE_OPACITY = {"open": 1.0, "resolved": 0.35}
BUCKET_FORMAT = "%Y-%m-%d %H:%M"  # a bucket's start, in tooltips
# counts are whole: with one run per bucket, Vega's ticks read 0.2, 0.4... workflows
COUNT_AXIS = alt.Axis(tickMinStep=1, format="d")
# time labels read to the minute: over a few minutes of data, Vega ticked every 15 or
# 30 s and labelled them "19:57 19:57 19:57 19:58". Two minutes between ticks at least
# makes it pick whole minutes, never less (Vega: count <= span / min step + 1).
TIME_TICK_MIN_STEP_MS = 120_000
# a bar spans its bucket (``at`` to ``until``): drawn at its start alone, it was a
# few pixels wide whatever the bucket, and the first and last were cut in half by
# the chart's edges. Vega-Lite stacks no bar that spans x, so each segment is
# stacked here (``base`` to ``top``). A white edge parts neighbouring buckets
BUCKET_EDGE = {"stroke": "white", "strokeWidth": 1}


def throughput_chart(frame: pd.DataFrame, *, bucket: dt.timedelta) -> alt.Chart:
    """Workflows started per bucket (of ``bucket`` each), stacked by status."""
    return (
        alt.Chart(_stacked(frame, bucket=bucket, count="workflows", by=["status"]))
        .mark_bar(**BUCKET_EDGE)
        .encode(
            x=_utc_time(frame),
            x2="until:T",
            y=alt.Y("base:Q", title="workflows started", axis=COUNT_AXIS),
            y2="top:Q",
            color=alt.Color(
                "status:N",
                scale=alt.Scale(domain=list(STATUS_COLORS), range=list(STATUS_COLORS.values())),
            ),
            tooltip=[utc_tooltip("at"), "status:N", "workflows:Q"],
        )
        .properties(height=220)
    )


def anomalies_chart(frame: pd.DataFrame, *, bucket: dt.timedelta) -> alt.Chart:
    """Anomalies detected per bucket (of ``bucket`` each), stacked by kind: those still
    open solid, at the bottom of each bar, and those resolved since faded above them,
    so that the open ones read as the tiles beside the chart count them."""
    return (
        alt.Chart(_stacked(frame, bucket=bucket, count="anomalies", by=["state", "kind"]))
        .mark_bar(**BUCKET_EDGE)
        .encode(
            x=_utc_time(frame),
            x2="until:T",
            y=alt.Y("base:Q", title="anomalies detected", axis=COUNT_AXIS),
            y2="top:Q",
            color=alt.Color("kind:N"),
            opacity=alt.Opacity(
                "state:N",
                scale=alt.Scale(domain=list(STATE_OPACITY), range=list(STATE_OPACITY.values())),
            ),
            tooltip=[utc_tooltip("at"), "kind:N", "state:N", "anomalies:Q"],
        )
        .properties(height=220)
    )


def _stacked(
    frame: pd.DataFrame, *, bucket: dt.timedelta, count: str, by: list[str]
) -> pd.DataFrame:
    """``frame`` with UTC tooltip text, ``until`` (the end of the bucket beginning at
    ``at``), and each row's segment of its bucket's stack, in the order of ``by``:
    ``base`` to ``top``."""
    ordered = with_utc_text(frame, "at", BUCKET_FORMAT).sort_values(["at", *by], kind="stable")
    top = ordered.groupby("at", sort=False)[count].cumsum()
    return ordered.assign(
        until=pd.to_datetime(ordered["at"], utc=True) + bucket, base=top - ordered[count], top=top
    )


def with_utc_text(frame: pd.DataFrame, field: str, time_format: str) -> pd.DataFrame:
    """``frame`` with ``<field>_utc``: the time as UTC text, for tooltips. Vega formats a
    tooltip's time in the browser's zone, so "12:05" on a UTC axis read "13:05" beside
    it; text is shown as it is."""
    times = pd.to_datetime(frame[field], utc=True)
    return frame.assign(**{f"{field}_utc": times.dt.strftime(time_format)})


def utc_tooltip(field: str) -> alt.Tooltip:
    """The tooltip of ``with_utc_text``'s column."""
    return alt.Tooltip(f"{field}_utc:N", title=f"{field} (UTC)")


def _utc_time(frame: pd.DataFrame) -> alt.X:
    """The time axis: UTC on a 24-hour clock (Vega's default labels read "11 PM"),
    with the day too when the window spans more than one."""
    times = pd.to_datetime(frame["at"], utc=True)
    several_days = len(times) > 0 and times.max() - times.min() > pd.Timedelta(days=1)
    return alt.X(
        "at:T",
        title="UTC",
        scale=alt.Scale(type="utc"),
        axis=alt.Axis(
            format="%b %d %H:%M" if several_days else "%H:%M",
            labelOverlap=True,
            tickMinStep=TIME_TICK_MIN_STEP_MS,
        ),
    )
