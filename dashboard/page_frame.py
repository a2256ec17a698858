"""What every page starts with: the shared controls, and the empty state.

A page calls ``open_page()``; when the store is missing or empty it shows a
helpful empty state pointing to ``choreoscope demo`` and returns None, so the
page renders nothing else (and no stack trace). It then draws its body with
``render_page()``, which says above it when the statuses are old, again at each
live refresh.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from correlator.explain import ago
from correlator.last_pass import read_last_pass
from correlator.queries import StoreCounts
from dashboard.controls import (
    ALL_TIME,
    TimeWindow,
    live_refresh_control,
    render_live,
    time_window_control,
)
from dashboard.data import read
from dashboard.store_location import current_data_dir
from instrumentation.errors import ChoreoscopeError
from store import StoreLayout

EMPTY_STATE_TITLE = "No traces in this store yet"
STALE_AFTER_S = 60.0  # a watcher records a pass every few seconds (correlator.last_pass)
# a cold pass notes that it still judges every 30 s: one not noted for longer died
JUDGING_NOTED_WITHIN_S = 90.0
DEMO_COMMAND = "choreoscope demo"


@dataclass(frozen=True)
class PageContext:
    data_dir: str
    window: TimeWindow
    live: bool
    judges_freshness: bool = True  # says when the correlator's statuses are old


WINDOW_NOT_APPLIED = (
    "The time window does not apply here: queries read everything stored. Filter by "
    "time in the query, e.g. `WHERE last_activity_at >= now() - INTERVAL 1 HOUR`."
)


def open_page(title: str, *, needs_data: bool = True, windowed: bool = True) -> PageContext | None:
    """Title, sidebar controls and store check; None when the empty state was shown.
    A page that is not ``windowed`` (the SQL console) shows no time window selector,
    which it would not apply, and says so, nor a live refresh toggle (it runs a query
    when asked); what was chosen is kept for the others."""
    st.title(title)
    data_dir = current_data_dir()
    if windowed:
        window = time_window_control()
    else:
        window = TimeWindow(label=ALL_TIME, since=None)
        st.sidebar.caption(WINDOW_NOT_APPLIED)
    live = live_refresh_control() if windowed else False
    st.sidebar.caption("Store")
    st.sidebar.code(_as_given(data_dir), language=None)
    try:
        counts: StoreCounts = read("store_counts", data_dir)
    except ChoreoscopeError as e:
        show_empty_state(data_dir, reason=str(e))
        return None
    if needs_data and counts.empty:
        show_empty_state(data_dir, reason=None)
        return None
    return PageContext(data_dir=data_dir, window=window, live=live, judges_freshness=needs_data)


def render_page(page: PageContext, body: Callable[[], None]) -> None:
    """``body``, live (``render_live``), under the note that the statuses are old.
    The note is judged again at each refresh: drawn once when the page opened, it
    never appeared when the correlator stopped while the page was watched, whose
    numbers then stood still as if nothing were stuck."""

    def noted() -> None:
        say_statuses_freshness(page)
        body()

    render_live(noted, live=page.live)


def say_statuses_freshness(page: PageContext) -> None:
    """``say_when_statuses_are_old`` for ``page``'s store, when it judges it."""
    if page.judges_freshness:
        counts: StoreCounts = read("store_counts", page.data_dir)
        say_when_statuses_are_old(page.data_dir, judged=counts.judged > 0)


def say_when_statuses_are_old(
    data_dir: str, *, judged: bool = True, now: dt.datetime | None = None
) -> None:
    """A warning when the correlator last judged the store over a minute ago, or
    never did (``judged`` is False and no pass is recorded): with no watcher, runs
    stay "in flight", none is stalled or failed, and nothing else on the page would
    say so."""
    last = read_last_pass(StoreLayout.at(data_dir))
    if last is None:
        if not judged:
            st.warning(
                "No correlator has judged this store yet: every run shows as in flight, "
                "none as stalled or failed, and no anomaly is listed. Start one with "
                f"`choreoscope correlate --watch --data {shlex.quote(_as_given(data_dir))}`.",
                icon=":material/history:",
            )
        return
    now = now or dt.datetime.now(dt.UTC)
    age = (now - last.as_of).total_seconds()
    if age <= STALE_AFTER_S:
        return
    if (
        last.judging_since is not None
        and last.noted_at is not None
        and (now - last.noted_at).total_seconds() <= JUDGING_NOTED_WITHIN_S
    ):
        judging_for = (now - last.judging_since).total_seconds()
        if last.judging_failures:  # it tries again and again: nothing is judged meanwhile
            st.warning(
                f"The correlator has been trying to judge the stored spans for "
                f"{ago(judging_for)} (since {last.judging_since:%H:%M:%S} UTC), and its pass "
                f"failed {last.judging_failures} times: its log says why. Statuses are as "
                f"of its last pass, {ago(age)} ago.",
                icon=":material/error:",
            )
            return
        st.info(
            f"The correlator has been judging the stored spans for {ago(judging_for)} "
            f"(since {last.judging_since:%H:%M:%S} UTC): until it is done, statuses are as "
            f"of its last pass, {ago(age)} ago.",
            icon=":material/hourglass_top:",
        )
        return
    who = "the watcher's last pass" if last.watching else "the correlator's last pass"
    st.warning(
        f"Statuses are as of {who}, {ago(age)} ago ({last.as_of:%H:%M:%S} UTC): runs may "
        "have finished or stalled since. Keep them fresh with "
        f"`choreoscope correlate --watch --data {shlex.quote(_as_given(data_dir))}`.",
        icon=":material/history:",
    )


def _as_given(data_dir: str) -> str:
    """The store's path relative to the working directory when it lies inside it."""
    path, here = Path(data_dir), Path.cwd()
    return str(path.relative_to(here)) if path.is_relative_to(here) else data_dir


def show_empty_state(data_dir: str, *, reason: str | None) -> None:
    st.info(EMPTY_STATE_TITLE, icon=":material/hourglass_empty:")
    st.write(
        "Start the demo: it runs an embedded NATS, sample agent pipelines with "
        "injected faults, the collector and the correlator, and fills this store."
    )
    st.code(f"{DEMO_COMMAND} --data {shlex.quote(_as_given(data_dir))}", language="bash")
    st.write(
        "Or point your own services at choreoscope with `instrumentation.configure(...)`, "
        "run `choreoscope collect`, and open the dashboard on the same `--data` directory:"
    )
    st.code(data_dir, language=None)
    if reason:
        st.caption("What the store said:")
        st.code(reason, language=None)
