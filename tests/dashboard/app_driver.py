"""Driving the dashboard with Streamlit's AppTest, and reading what a user sees."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

import dashboard
from dashboard.store_location import DATA_DIR_KEY

APP = Path(dashboard.__file__).with_name("app.py")


def open_dashboard(
    data_dir: Path, *, page: str | None = None, workflow: str | None = None
) -> AppTest:
    """Run the app on ``data_dir``, on ``page`` (e.g. "views/workflows.py") if given."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state[DATA_DIR_KEY] = str(data_dir)
    if workflow is not None:
        at.query_params["workflow"] = workflow
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def markdown_texts(at: AppTest) -> list[str]:
    """Every text Streamlit rendered as Markdown (where markup would take effect)."""
    elements = [
        *at.markdown,
        *at.caption,
        *at.title,
        *at.header,
        *at.subheader,
        *at.error,
        *at.warning,
        *at.info,
        *at.success,
    ]
    return [str(e.value) for e in elements] + [str(m.label) for m in at.metric]


def plain_texts(at: AppTest) -> list[str]:
    """Every text rendered verbatim: code blocks and plain text."""
    return [str(e.value) for e in [*at.code, *at.text]]


def dataframe_cells(at: AppTest) -> list[str]:
    return [str(v) for d in at.dataframe for v in d.value.astype(str).to_numpy().ravel()]
