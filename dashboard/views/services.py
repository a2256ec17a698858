"""Services: liveness from heartbeats, counters, telemetry gaps, JetStream consumer lag
and signals."""

from __future__ import annotations

import streamlit as st

from dashboard.charts import with_utc_text
from dashboard.data import read
from dashboard.page_frame import PageContext, open_page, render_page

LAST_SEEN_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


def render(page: PageContext) -> None:
    liveness = read("service_liveness", page.data_dir)
    if liveness.empty:
        st.info("No heartbeats yet: instrumented services send one every few seconds.")
    else:
        stopped = ~liveness["alive"] & liveness["stopped"]
        down = liveness[~liveness["alive"] & ~liveness["stopped"]]
        dropping = liveness[liveness["spans_dropped"] > 0]
        tiles = st.columns(4)
        tiles[0].metric("Instances alive", int(liveness["alive"].sum()))
        tiles[1].metric("Instances silent", len(down))
        tiles[2].metric("Instances stopped", int(stopped.sum()))
        tiles[3].metric("Instances dropping spans", len(dropping))
        st.subheader("Liveness and counters")
        # "3 min ago" beside the time it was, as UTC text (a DatetimeColumn's format is
        # drawn in the browser's zone): to match against logs and the other pages' times
        columns = list(liveness.columns)
        columns.insert(columns.index("last_seen") + 1, "last_seen_utc")
        st.dataframe(
            with_utc_text(liveness, "last_seen", LAST_SEEN_FORMAT)[columns],
            hide_index=True,
            column_config={
                "alive": st.column_config.CheckboxColumn("alive"),
                "last_seen": st.column_config.DatetimeColumn("last seen", format="distance"),
                "last_seen_utc": st.column_config.TextColumn("last seen (UTC)"),
                "restarted_at": st.column_config.DatetimeColumn("restarted", format="distance"),
            },
        )
        if stopped.any():
            st.caption(
                "Stopped: the instance said in its last heartbeat that it was stopping (on "
                "purpose, not silent by accident)."
            )
        if liveness["restarted_at"].notna().any():
            st.caption(
                "Restarted: an instance's counters fell since its previous heartbeat (the "
                "process restarted under the same instance id). They count from then."
            )
        if not dropping.empty:
            st.subheader("Telemetry gaps")
            st.caption(
                "These exporters dropped spans: findings that depend on their spans are "
                "reported as telemetry gaps, not as workflow faults."
            )
            st.dataframe(
                dropping[["service", "instance", "spans_exported", "spans_dropped"]],
                hide_index=True,
            )
    st.subheader("JetStream consumers")
    lag = read("consumer_lag_latest", page.data_dir)
    if lag.empty:
        st.caption(
            "No consumer lag sampled yet: the collector samples every JetStream consumer "
            "every 10 s."
        )
    else:
        st.caption(
            "Backlog: messages in the stream not yet delivered to the consumer. Unacked: "
            "delivered, not yet acknowledged (being handled, or stuck). A backlog that "
            "grows while nothing is delivered means the consumer group is down."
        )
        st.dataframe(
            lag,
            hide_index=True,
            column_config={
                "last_delivered_at": st.column_config.DatetimeColumn(
                    "last delivery", format="distance"
                ),
                "sampled_at": st.column_config.DatetimeColumn("sampled", format="distance"),
            },
        )
    st.subheader("JetStream signals")
    bus = read("bus_event_counts", page.data_dir, since=page.window.since)
    if bus.empty:
        st.caption("No redeliveries, terminations or max-delivery advisories in this window.")
    else:
        st.dataframe(bus, hide_index=True)


page = open_page("Services")
if page is not None:
    render_page(page, lambda: render(page))
