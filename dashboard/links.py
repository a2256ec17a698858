"""Links to a workflow's detail page, as table cells.

A link is a relative address (``workflow?workflow=<id>``), so it works under any
host, port or base path. Tables show it with ``workflow_link_column()``, a link
cell whose text is fixed, so no id is ever rendered as markup.
"""

from __future__ import annotations

from urllib.parse import quote

import pandas as pd
import streamlit as st

DETAIL_PAGE = "views/workflow_detail.py"
DETAIL_URL_PATH = "workflow"
LINK_COLUMN = "open"


def workflow_url(workflow_id: str) -> str:
    return f"{DETAIL_URL_PATH}?workflow={quote(workflow_id, safe='')}"


def with_workflow_links(frame: pd.DataFrame, *, id_column: str = "workflow_id") -> pd.DataFrame:
    """``frame`` with a first column linking each row's workflow (none for a null id)."""
    links = frame[id_column].map(lambda w: workflow_url(w) if isinstance(w, str) else None)
    return frame.assign(**{LINK_COLUMN: links})[[LINK_COLUMN, *frame.columns]]


def workflow_link_column() -> dict[str, object]:
    """The ``column_config`` entry for the link column."""
    return {
        LINK_COLUMN: st.column_config.LinkColumn(
            "open", display_text="open ↗", help="Open this workflow's detail page", width="small"
        )
    }
