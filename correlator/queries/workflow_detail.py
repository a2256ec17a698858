"""Read functions of the Workflow detail page: the run, its hops, steps and findings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from correlator.queries.query_files import query_frame, query_text
from correlator.queries.scope import scoped_to_workflow


@dataclass(frozen=True)
class WorkflowRun:
    """One row of the ``workflows`` view."""

    workflow_id: str
    workflow_type: str | None
    status: str
    started_at: dt.datetime | None
    last_activity_at: dt.datetime | None
    ended_at: dt.datetime | None
    duration_ms: float | None
    waiting_on: str | None
    root_cause: str | None
    services: tuple[str, ...]
    span_count: int
    error_count: int


@dataclass(frozen=True)
class WorkflowDetail:
    """Everything the detail page shows about one run, read in one scoped pass."""

    run: WorkflowRun
    steps: pd.DataFrame
    hops: pd.DataFrame
    messages: pd.DataFrame
    anomalies: pd.DataFrame
    audit: pd.DataFrame
    related: pd.DataFrame
    # ``service, instance, spans_dropped, first_reported_at, last_reported_at``: spans
    # the run's services reported dropping while it ran (workflow_spans_dropped.sql)
    spans_dropped: pd.DataFrame


def workflow_detail(con: duckdb.DuckDBPyConnection, *, workflow_id: str) -> WorkflowDetail | None:
    """The run and its steps, hops, messages, findings, captures, related runs and the
    spans its services dropped meanwhile."""
    with scoped_to_workflow(con, workflow_id=workflow_id):
        params = {"workflow_id": workflow_id}
        run = _as_run(query_frame(con, "workflow_run", params))
        if run is None:
            return None
        return WorkflowDetail(
            run=run,
            steps=query_frame(con, "workflow_steps", params),
            hops=query_frame(con, "workflow_hops", params),
            messages=query_frame(con, "workflow_messages", params),
            anomalies=query_frame(con, "workflow_anomalies", params),
            audit=query_frame(con, "workflow_audit", params),
            related=query_frame(con, "related_workflows", params),
            spans_dropped=query_frame(con, "workflow_spans_dropped", params),
        )


def workflows_matching(
    con: duckdb.DuckDBPyConnection, *, prefix: str, at_most: int = 6
) -> tuple[str, ...]:
    """The workflow ids starting with ``prefix`` (at most ``at_most``): just the id
    itself when it is a whole one, so a full id never reads as ambiguous."""
    ids = tuple(
        row[0]
        for row in con.execute(
            query_text("workflow_ids_matching"), {"prefix": prefix, "at_most": at_most}
        ).fetchall()
    )
    return ids[:1] if ids and ids[0] == prefix else ids


def workflow_run(con: duckdb.DuckDBPyConnection, *, workflow_id: str) -> WorkflowRun | None:
    """The run with this id, or None when the store has no such workflow."""
    return _as_run(_scoped_frame(con, "workflow_run", workflow_id))


def _as_run(rows: pd.DataFrame) -> WorkflowRun | None:
    if rows.empty:
        return None
    row = rows.astype(object).where(rows.notna(), None).iloc[0]
    services = row["services"]
    return WorkflowRun(
        workflow_id=str(row["workflow_id"]),
        workflow_type=row["workflow_type"],
        status=str(row["status"]),
        started_at=row["started_at"],
        last_activity_at=row["last_activity_at"],
        ended_at=row["ended_at"],
        duration_ms=row["duration_ms"],
        waiting_on=row["waiting_on"],
        root_cause=row["root_cause"],
        services=tuple(services) if services is not None else (),
        span_count=int(row["span_count"] or 0),
        error_count=int(row["error_count"] or 0),
    )


def workflow_steps(con: duckdb.DuckDBPyConnection, *, workflow_id: str) -> pd.DataFrame:
    """Every span of the workflow in time order: service, subject, message id, attempt, error."""
    return _scoped_frame(con, "workflow_steps", workflow_id)


def workflow_hops(con: duckdb.DuckDBPyConnection, *, workflow_id: str) -> pd.DataFrame:
    """Each processing attempt: queue wait (publish to start) apart from processing."""
    return _scoped_frame(con, "workflow_hops", workflow_id)


def workflow_messages(con: duckdb.DuckDBPyConnection, *, workflow_id: str) -> pd.DataFrame:
    """The workflow's messages and their outcome (processed, unconsumed, dead_lettered...)."""
    return _scoped_frame(con, "workflow_messages", workflow_id)


def workflow_anomalies(con: duckdb.DuckDBPyConnection, *, workflow_id: str) -> pd.DataFrame:
    """``kind, service, subject, message_id, detected_at, detail``; the stall first."""
    return query_frame(con, "workflow_anomalies", {"workflow_id": workflow_id})


def workflow_audit(con: duckdb.DuckDBPyConnection, *, workflow_id: str) -> pd.DataFrame:
    """Captured inputs and outputs of the workflow's spans (empty when capture is off)."""
    return _scoped_frame(con, "workflow_audit", workflow_id)


def related_workflows(con: duckdb.DuckDBPyConnection, *, workflow_id: str) -> pd.DataFrame:
    """``relation, workflow_id``: workflows joined to this one by links across traces."""
    return _scoped_frame(con, "related_workflows", workflow_id)


def _scoped_frame(con: duckdb.DuckDBPyConnection, query: str, workflow_id: str) -> pd.DataFrame:
    with scoped_to_workflow(con, workflow_id=workflow_id):
        return query_frame(con, query, {"workflow_id": workflow_id})
