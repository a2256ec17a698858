"""Choreography map: who publishes what, who consumes it, and which hops hurt."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.choreography_graph import choreography_dot
from dashboard.data import read
from dashboard.page_frame import PageContext, open_page, render_page

MODEL_KEY = ["subject", "consumer"]


def render(page: PageContext) -> None:
    edges = read("choreography_edges", page.data_dir, since=page.window.since)
    if edges.empty:
        st.caption("No hop between services seen yet.")
    else:
        st.graphviz_chart(choreography_dot(edges))
        st.caption("Red arrows: hops with dropped messages or failed attempts.")
        st.dataframe(
            edges,
            hide_index=True,
            column_config={
                "drop_rate": st.column_config.NumberColumn("drop rate", format="percent"),
                "error_rate": st.column_config.NumberColumn("error rate", format="percent"),
            },
        )
    render_models(page)


def render_models(page: PageContext) -> None:
    st.subheader("Expected choreography: learned and declared")
    model = read("choreography_model", page.data_dir)
    if model.empty:
        st.caption(
            "No model yet: `choreoscope correlate` learns one from the traffic, and "
            "`--choreography choreography.yaml` declares one."
        )
        return
    learned = model[model["source"] == "learned"]
    declared = model[model["source"] == "declared"]
    left, right = st.columns(2)
    with left:
        st.caption("Learned from traffic")
        if learned.empty:
            st.text("Nothing learned apart from the declared model.")
        else:
            st.dataframe(_mark_deviations(learned, declared), hide_index=True)
    with right:
        st.caption("Declared in choreography.yaml")
        if declared.empty:
            st.text("Nothing declared.")
        else:
            st.dataframe(_mark_deviations(declared, learned), hide_index=True)
    if not learned.empty and not declared.empty:
        st.caption("Highlighted rows: a step one model expects and the other does not.")
    deviations = read("anomaly_list", page.data_dir, since=page.window.since, kinds=("deviation",))
    if not deviations.empty:
        st.subheader("Deviations seen in this window")
        st.dataframe(
            deviations[["detail", "workflow_id", "subject", "detected_at"]], hide_index=True
        )


def _mark_deviations(model: pd.DataFrame, other: pd.DataFrame):
    """Highlight ``model``'s steps that ``other`` lacks (when there is another model)."""
    if other.empty:
        return model
    known = set(map(tuple, other[MODEL_KEY].astype(str).to_numpy()))
    missing = [tuple(r) not in known for r in model[MODEL_KEY].astype(str).to_numpy()]
    colors = pd.Series(
        ["background-color: #fde2c8" if m else "" for m in missing], index=model.index
    )
    return model.style.apply(lambda _: colors, axis=0)


page = open_page("Choreography map")
if page is not None:
    render_page(page, lambda: render(page))
