"""Overview: what is stuck right now, how many runs, how fast, and the worst hops."""

from __future__ import annotations

import streamlit as st

from correlator.queries import OverviewTiles
from dashboard.charts import anomalies_chart, throughput_chart
from dashboard.controls import render_live
from dashboard.data import read
from dashboard.links import with_workflow_links, workflow_link_column
from dashboard.page_frame import PageContext, open_page


def render(page: PageContext) -> None:
    since = page.window.since
    tiles: OverviewTiles = read("overview_tiles", page.data_dir, since=since)
    row = st.columns(7)
    row[0].metric("Started", tiles.started)
    row[1].metric("Completed", tiles.completed)
    row[2].metric("In flight", tiles.in_flight)
    row[3].metric("Stalled", tiles.stalled)
    row[4].metric("Failed", tiles.failed)
    row[5].metric("p50 end to end", _duration(tiles.p50_ms))
    row[6].metric("p95 end to end", _duration(tiles.p95_ms))

    stuck = read(
        "list_workflows", page.data_dir, since=since, statuses=("stalled", "failed"), limit=20
    )
    st.subheader("Stuck now")
    if stuck.empty:
        st.success("No stalled or failed workflows in this window.")
    else:
        st.dataframe(
            with_workflow_links(
                stuck[["workflow_id", "status", "workflow_type", "waiting_on", "last_activity_at"]]
            ),
            hide_index=True,
            column_config=workflow_link_column(),
        )

    counts = read("anomaly_counts", page.data_dir, since=since)
    st.subheader("Anomalies by kind")
    if counts.empty:
        st.caption("No anomalies detected in this window.")
    else:
        kinds = st.columns(min(len(counts), 6))
        for i, anomaly in enumerate(counts.itertuples(index=False)):
            kinds[i % len(kinds)].metric(str(anomaly.kind), int(anomaly.anomalies))

    left, right = st.columns(2)
    with left:
        st.subheader("Throughput")
        throughput = read(
            "throughput_over_time", page.data_dir, since=since, bucket=page.window.bucket
        )
        if throughput.empty:
            st.caption("No workflow started in this window.")
        else:
            st.altair_chart(throughput_chart(throughput))
    with right:
        st.subheader("Anomalies over time")
        trend = read("anomalies_over_time", page.data_dir, since=since, bucket=page.window.bucket)
        if trend.empty:
            st.caption("No anomalies detected in this window.")
        else:
            st.altair_chart(anomalies_chart(trend))

    st.subheader("Worst hops")
    st.dataframe(
        read("worst_hops", page.data_dir, limit=10),
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
    render_live(lambda: render(page), live=page.live)
