"""The controls every page shares: the time window and live refresh.

Both live in the sidebar, and their values in session state under keys of their
own, so they persist from page to page: Streamlit forgets a widget's state when
the page that drew it is left, even when the next page draws one of the same key.

The window's start is rounded down to the refresh period, so that cached reads are
shared by every rerun (and session) within one period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from instrumentation.errors import ChoreoscopeError

REFRESH_S = 5.0
WINDOWS: dict[str, dt.timedelta | None] = {
    "Last 15 minutes": dt.timedelta(minutes=15),
    "Last hour": dt.timedelta(hours=1),
    "Last 6 hours": dt.timedelta(hours=6),
    "Last 24 hours": dt.timedelta(hours=24),
    "Last 7 days": dt.timedelta(days=7),
    "All time": None,
}
ALL_TIME = "All time"
DEFAULT_WINDOW = "Last hour"
KEPT_WINDOW = "chosen_time_window"  # the widget's value, kept across pages
KEPT_LIVE = "chosen_live_refresh"


@dataclass(frozen=True)
class TimeWindow:
    label: str
    since: dt.datetime | None

    @property
    def bucket(self) -> dt.timedelta:
        """A chart bucket giving about 60 points across the window."""
        length = WINDOWS[self.label] or dt.timedelta(days=7)
        return max(dt.timedelta(seconds=10), length / 60)


def time_window_control(*, now: dt.datetime | None = None) -> TimeWindow:
    """The sidebar's time window selector; returns the chosen window."""
    label = st.sidebar.selectbox(
        "Time window",
        list(WINDOWS),
        index=list(WINDOWS).index(st.session_state.get(KEPT_WINDOW, DEFAULT_WINDOW)),
        key="time_window",
    )
    st.session_state[KEPT_WINDOW] = label
    length = WINDOWS[label]
    if length is None:
        return TimeWindow(label=label, since=None)
    now = now or dt.datetime.now(dt.UTC)
    rounded = now.timestamp() - now.timestamp() % REFRESH_S
    return TimeWindow(label=label, since=dt.datetime.fromtimestamp(rounded, dt.UTC) - length)


def live_refresh_control() -> bool:
    """The sidebar's pause toggle; True while live refresh is on."""
    live = st.sidebar.toggle(
        f"Live refresh (every {REFRESH_S:g} s)",
        value=st.session_state.get(KEPT_LIVE, True),
        key="live_refresh",
        help="Turn off to pause the page while you read it.",
    )
    st.session_state[KEPT_LIVE] = live
    return live


def render_live(body: Callable[[], None], *, live: bool) -> None:
    """Render ``body`` in a fragment that reruns every few seconds while ``live``.
    What it cannot read for a reason the user can act on (a damaged segment: which
    file, and what to do) is said on the page, not shown as a traceback."""

    def said_when_unreadable() -> None:
        try:
            body()
        except ChoreoscopeError as e:
            st.error(str(e), icon=":material/error:")

    st.fragment(said_when_unreadable, run_every=REFRESH_S if live else None)()
