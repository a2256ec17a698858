"""What every page starts with: the shared controls, and the empty state.

A page calls ``open_page()``; when the store is missing or empty it shows a
helpful empty state pointing to ``choreoscope demo`` and returns None, so the
page renders nothing else (and no stack trace).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from correlator.queries import StoreCounts
from dashboard.controls import TimeWindow, live_refresh_control, time_window_control
from dashboard.data import read
from dashboard.store_location import current_data_dir
from instrumentation.errors import ChoreoscopeError

EMPTY_STATE_TITLE = "No traces in this store yet"
DEMO_COMMAND = "choreoscope demo"


@dataclass(frozen=True)
class PageContext:
    data_dir: str
    window: TimeWindow
    live: bool


def open_page(title: str, *, needs_data: bool = True) -> PageContext | None:
    """Title, sidebar controls and store check; None when the empty state was shown."""
    st.title(title)
    data_dir = current_data_dir()
    window = time_window_control()
    live = live_refresh_control()
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
    return PageContext(data_dir=data_dir, window=window, live=live)


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
    st.code(DEMO_COMMAND, language="bash")
    st.write(
        "Or point your own services at choreoscope with `instrumentation.configure(...)`, "
        "run `choreoscope collect`, and open the dashboard on the same `--data` directory:"
    )
    st.code(data_dir, language=None)
    if reason:
        st.caption("What the store said:")
        st.code(reason, language=None)
