"""Overview: what is stuck right now, how many runs, how fast, and the worst hops."""

from __future__ import annotations

import streamlit as st

from correlator.queries import STUCK_AT_MOST, Overview
from dashboard.charts import anomalies_chart, throughput_chart
from dashboard.data import read
from dashboard.links import with_workflow_links, workflow_link_column
from dashboard.page_frame import PageContext, open_page, render_page


def render(page: PageContext) -> None:
    data: Overview = read(
        "overview", page.data_dir, since=page.window.since, bucket=page.window.bucket
    )
    tiles = data.tiles
    row = st.columns(7)
    row[0].metric("Started", tiles.started)
    row[1].metric("Completed", tiles.completed)
    row[2].metric("In flight", tiles.in_flight)
    row[3].metric("Stalled", tiles.stalled)
    row[4].metric("Failed", tiles.failed)
    row[5].metric("p50 end to end", _duration(tiles.p50_ms))
    row[6].metric("p95 end to end", _duration(tiles.p95_ms))

    st.subheader("Stuck now")
    if data.stuck.empty:
        st.success("No stalled or failed workflows in this window.")
    else:
        columns = [
            "workflow_id", "status", "workflow_type", "waiting_on", "root_cause",
            "last_activity_at",
        ]  # fmt: skip
        st.dataframe(
            with_workflow_links(data.stuck[columns]),
            hide_index=True,
            column_config=workflow_link_column(),
        )
        if len(data.stuck) >= STUCK_AT_MOST:
            st.caption(f"The {STUCK_AT_MOST} most recent: the Workflows page lists them all.")

    st.subheader("Open anomalies by kind")
    if data.anomaly_counts.empty:
        st.caption("No open anomalies detected in this window.")
    else:
        kinds = st.columns(min(len(data.anomaly_counts), 6))
        for i, anomaly in enumerate(data.anomaly_counts.itertuples(index=False)):
            kinds[i % len(kinds)].metric(str(anomaly.kind), int(anomaly.anomalies))

    left, right = st.columns(2)
    with left:
        st.subheader("Throughput")
        if data.throughput.empty:
            st.caption("No workflow started in this window.")
        else:
            st.altair_chart(throughput_chart(data.throughput, bucket=page.window.bucket))
    with right:
        st.subheader("Anomalies detected over time")
        if data.anomalies_over_time.empty:
            st.caption("No anomalies detected in this window.")
        else:
            st.altair_chart(anomalies_chart(data.anomalies_over_time, bucket=page.window.bucket))
            st.caption(
                "By when each was detected: still open solid (as the tiles above count "
                "them), resolved since faded."
            )

    st.subheader("Worst hops")
    st.dataframe(
        data.worst_hops,
        hide_index=True,
        column_config={
            "drop_rate": st.column_config.NumberColumn("drop rate", format="percent"),
            "error_rate": st.column_config.NumberColumn("error rate", format="percent"),
        },
    )


def _duration(ms: float | None) -> str:
    if ms is None:
        return "–"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


page = open_page("Overview")
if page is not None:
    render_page(page, lambda: render(page))
