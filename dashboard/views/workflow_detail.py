"""Workflow detail (``?workflow=<id>``): where the run stopped and why, hop by hop."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from correlator.explain import ago
from correlator.queries import WorkflowDetail, WorkflowRun
from dashboard.anomaly_state import with_state
from dashboard.data import read
from dashboard.links import with_workflow_links, workflow_link_column
from dashboard.page_frame import PageContext, open_page, render_page, say_statuses_freshness
from dashboard.waterfall import waterfall_chart, waterfall_rows

VERDICTS = {
    "stalled": "Stalled: the workflow stopped making progress.",
    "failed": "Failed: a step raised and no later attempt succeeded.",
}

PREFIX_MATCHES_LISTED = 10  # workflows listed when a typed id begins several
# a run's steps often fall within one second: to the second (the table's default),
# every start read alike, and their order and gaps were lost
STEP_COLUMNS = {
    "start_time": st.column_config.DatetimeColumn("start_time", format="YYYY-MM-DD HH:mm:ss.SSS Z")
}


def choose_workflow(page: PageContext) -> None:
    """No ``?workflow=`` given: offer the stuck runs and an id box."""
    stuck = read(
        "list_workflows", page.data_dir, since=page.window.since, statuses=("stalled", "failed")
    )
    if not stuck.empty:
        st.subheader("Stuck workflows")
        st.dataframe(
            with_workflow_links(stuck[["workflow_id", "status", "workflow_type", "waiting_on"]]),
            hide_index=True,
            column_config=workflow_link_column(),
        )
    typed = st.text_input("Open a workflow by id", key="workflow_id_box")
    if typed.strip():
        st.query_params["workflow"] = typed.strip()
        st.rerun()


def open_by_prefix(page: PageContext, prefix: str) -> None:
    """No workflow has this id: open the one it begins, or list the several it does."""
    matches: tuple[str, ...] = read(
        "workflows_matching", page.data_dir, prefix=prefix, at_most=PREFIX_MATCHES_LISTED
    )
    if len(matches) == 1:
        st.query_params["workflow"] = matches[0]
        st.rerun()
    if not matches:
        st.warning("No workflow with this id in the store.", icon=":material/search_off:")
        st.code(prefix, language=None)
        choose_workflow(page)  # not a dead end: the stuck runs, and another id
        return
    listed = "the first ten, by id" if len(matches) == PREFIX_MATCHES_LISTED else "all of them"
    st.info(
        f"Several workflows begin with this id ({listed} below): open one, or give more of it.",
        icon=":material/manage_search:",
    )
    st.dataframe(
        with_workflow_links(pd.DataFrame({"workflow_id": list(matches)})),
        hide_index=True,
        column_config=workflow_link_column(),
    )


def render(page: PageContext, workflow_id: str) -> None:
    detail: WorkflowDetail | None = read("workflow_detail", page.data_dir, workflow_id=workflow_id)
    if detail is None:
        open_by_prefix(page, workflow_id)
        return
    run = detail.run
    header = st.columns([5, 3, 2, 2])  # room for "completed" at a metric's size
    header[0].caption("Workflow")
    header[0].code(run.workflow_id, language=None)
    header[0].text(f"type: {run.workflow_type or '–'}  ·  services: {', '.join(run.services)}")
    header[0].text(_when(run))
    header[1].metric("Status", run.status)
    header[2].metric("Spans", run.span_count)
    header[3].metric("Errors", run.error_count)

    explain(run, detail.anomalies)
    say_spans_dropped(detail.spans_dropped)

    st.subheader("Timeline")
    if detail.hops.empty and detail.messages.empty:
        st.caption("No messages in this workflow yet.")
    else:
        rows = waterfall_rows(detail.hops, detail.messages, view_end=_view_end(run))
        st.altair_chart(waterfall_chart(rows, stall_at=_stall_point(run, rows)))

    st.subheader("Steps")
    st.dataframe(detail.steps, hide_index=True, column_config=STEP_COLUMNS)

    if not detail.anomalies.empty:
        st.subheader("Anomalies")
        st.dataframe(with_state(detail.anomalies), hide_index=True)

    audit = detail.audit
    if not audit.empty:
        st.subheader("Captured inputs and outputs")
        for capture in audit.itertuples(index=False):
            st.text(f"{capture.service} · {capture.name}")
            left, right = st.columns(2)
            left.caption("input")
            left.code(_text_or_blank(capture.input), language=None, wrap_lines=True)
            right.caption("output")
            right.code(_text_or_blank(capture.output), language=None, wrap_lines=True)

    related = detail.related
    if not related.empty:
        st.subheader("Related workflows")
        st.dataframe(
            with_workflow_links(related), hide_index=True, column_config=workflow_link_column()
        )


def explain(run: WorkflowRun, findings: pd.DataFrame) -> None:
    """The verdict, and the correlator's explanation, as plain text. A run that is not
    stuck but has open findings (slow, duplicate...) says so too: opened from such an
    anomaly, the page read only "completed", the why a long scroll below the steps."""
    open_findings = findings[findings["resolved_at"].isna()] if not findings.empty else findings
    explanations = [str(d) for d in open_findings.get("detail", pd.Series(dtype=str)).dropna()]
    if run.status in VERDICTS:
        st.error(VERDICTS[run.status], icon=":material/error:")
        if run.waiting_on and not explanations:
            explanations = [f"waiting on {run.waiting_on}"]
    elif explanations:
        kinds = ", ".join(dict.fromkeys(str(k) for k in open_findings["kind"]))
        st.warning(
            f"{run.status.replace('_', ' ').capitalize()}, with {len(explanations)} open "
            f"{'anomaly' if len(explanations) == 1 else 'anomalies'} ({kinds}): listed below.",
            icon=":material/warning:",
        )
    for explanation in explanations[:3]:
        st.code(explanation, language=None, wrap_lines=True)


def say_spans_dropped(dropped: pd.DataFrame) -> None:
    """Which of the run's services reported dropping spans while it ran: the correlator
    tells that once per service (a telemetry_gap without a workflow), and the run's
    page read "completed" with no sign that its picture may lack spans."""
    if dropped.empty:
        return
    st.warning(
        "Telemetry may be incomplete: a service of this run reported dropping spans while "
        "the run was in flight (from its heartbeat before the run began to the one after "
        "it ended). Its timeline and status may lack some of its spans.",
        icon=":material/visibility_off:",
    )
    for row in dropped.itertuples(index=False):
        # as text: a service name is span data, never markup
        st.code(
            f"`{row.service}` (instance {row.instance}) reported {int(row.spans_dropped):,} "
            f"spans dropped by its exporter {_reported(row)}",
            language=None,
            wrap_lines=True,
        )


def _reported(row: object) -> str:
    """``between 12:00:01 and 12:00:05 UTC``, when the heartbeats said so."""
    first, last = getattr(row, "first_reported_at", None), getattr(row, "last_reported_at", None)
    if first is None or pd.isna(first):
        return f"by {last:%H:%M:%S} UTC" if last is not None and pd.notna(last) else ""
    if last is None or pd.isna(last) or last == first:
        return f"at {first:%H:%M:%S} UTC"
    return f"between {first:%H:%M:%S} and {last:%H:%M:%S} UTC"


def _when(run: WorkflowRun, *, now: dt.datetime | None = None) -> str:
    """When the run started and last moved, and how long ago: a stuck run's age."""
    now = now or dt.datetime.now(dt.UTC)
    started = f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC" if run.started_at else "–"
    if run.last_activity_at is None:
        return f"started: {started}"
    quiet = ago((now - run.last_activity_at).total_seconds())
    return (
        f"started: {started}  ·  last activity: {run.last_activity_at:%H:%M:%S} UTC ({quiet} ago)"
    )


def _text_or_blank(value: object) -> str:
    return "" if value is None or pd.isna(value) else str(value)


def _view_end(run: WorkflowRun) -> dt.datetime:
    if run.status in ("stalled", "in_flight"):
        return dt.datetime.now(dt.UTC)
    return run.last_activity_at or dt.datetime.now(dt.UTC)


def _stall_point(run: WorkflowRun, rows: pd.DataFrame) -> dt.datetime | None:
    if run.status != "stalled":
        return None
    waiting = rows[rows["phase"] == "never processed"]
    return waiting["start"].min() if not waiting.empty else run.last_activity_at


page = open_page("Workflow detail")
if page is not None:
    workflow_id = st.query_params.get("workflow")
    if not workflow_id:
        say_statuses_freshness(page)
        choose_workflow(page)
    else:
        render_page(page, lambda: render(page, workflow_id))
