"""Anomalies: grouped by kind, each explained, each linked to its workflow."""

from __future__ import annotations

import streamlit as st

from correlator.queries import ANOMALY_KINDS
from dashboard.anomaly_state import with_state
from dashboard.data import read
from dashboard.links import with_workflow_links, workflow_link_column
from dashboard.page_frame import PageContext, open_page, render_page

DESCRIPTIONS = {
    "stalled": "Workflows with no progress past their step deadline.",
    "dropped": "Messages an expected consumer never received.",
    "hung": "Messages received but never finished processing.",
    "dead_lettered": "Messages terminated, past max deliveries, or sent to the dead letters.",
    "failed": "Steps that raised with no later successful attempt.",
    "duplicate": "Messages processed more than once by one consumer group.",
    "orphan": "Consumer spans whose producer span never arrived.",
    "deviation": "Event sequences the choreography does not allow.",
    "telemetry_gap": "Services that dropped spans or went silent.",
    "slow": "Steps that completed far past their usual latency.",
}


def render(page: PageContext, kinds: tuple[str, ...], include_resolved: bool) -> None:
    found = read(
        "anomaly_list",
        page.data_dir,
        since=page.window.since,
        kinds=kinds,
        include_resolved=include_resolved,
    )
    if found.empty:
        st.success("No anomalies in this window.")
        return
    for kind, group in found.groupby("kind", sort=False):
        st.subheader(f"{kind} ({len(group)})" if kind in DESCRIPTIONS else "other")
        if kind not in DESCRIPTIONS:
            st.text(str(kind))
        st.caption(DESCRIPTIONS.get(str(kind), ""))
        st.dataframe(
            with_workflow_links(
                (with_state(group) if include_resolved else group).drop(columns=["kind"])
            ),
            hide_index=True,
            column_config=workflow_link_column(),
        )


page = open_page("Anomalies")
if page is not None:
    left, right = st.columns([3, 1])
    kinds = left.multiselect("Kinds", ANOMALY_KINDS, key="anomaly_kinds")
    include_resolved = right.toggle("Include resolved", key="anomaly_resolved")
    render_page(page, lambda: render(page, tuple(kinds), include_resolved))
