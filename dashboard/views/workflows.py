"""Workflows: the filterable table of runs; selecting a row opens its detail."""

from __future__ import annotations

import streamlit as st

from correlator.queries import LISTED_AT_MOST, WORKFLOW_STATUSES
from dashboard.data import read
from dashboard.links import DETAIL_PAGE, with_workflow_links, workflow_link_column
from dashboard.page_frame import PageContext, open_page, render_page


def filters(page: PageContext) -> dict[str, object]:
    left, middle, right = st.columns(3)
    statuses = left.multiselect("Status", WORKFLOW_STATUSES, key="filter_status")
    types = read("workflow_types", page.data_dir)
    workflow_type = middle.selectbox("Workflow type", types, index=None, key="filter_type")
    services = read("service_names", page.data_dir)
    service = right.selectbox("Service", services, index=None, key="filter_service")
    search = st.text_input(
        "Search",
        key="filter_search",
        placeholder="workflow id, trace id, or any attribute value",
    )
    return {
        "statuses": tuple(statuses),
        "workflow_type": workflow_type,
        "service": service,
        "search": search.strip() or None,
    }


def render(page: PageContext, chosen: dict[str, object]) -> None:
    runs = read("list_workflows", page.data_dir, since=page.window.since, **chosen)
    shown = f"{len(runs)} workflows"
    if len(runs) >= LISTED_AT_MOST:
        shown = f"the first {LISTED_AT_MOST} workflows (stuck first): narrow them with the filters"
    st.caption(f"{shown} · select a row to open it")
    selection = st.dataframe(
        with_workflow_links(runs),
        hide_index=True,
        key="workflows_table",
        on_select="rerun",
        selection_mode="single-row",
        column_config=workflow_link_column(),
    )
    rows = selection.selection.rows if selection is not None else []
    if rows:
        st.switch_page(DETAIL_PAGE, query_params={"workflow": runs.iloc[rows[0]]["workflow_id"]})


page = open_page("Workflows")
if page is not None:
    chosen = filters(page)
    render_page(page, lambda: render(page, chosen))
