"""One detection pass over the spans ``correlated_spans`` points at.

The SQL in ``detect_sql`` builds the deliveries each workflow expects and judges
them against the model and the clock (``now`` is a parameter, so tests control
time); this module collects what it found.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from correlator.sql_text import parsed, run_folder, statement
from correlator.thresholds import Thresholds

FINDING_TABLES = (
    "d_delivery_findings",
    "d_orphan_findings",
    "d_slow_findings",
    "d_deviation_findings",
    "d_unfinished_findings",
)
SERVICE_FINDINGS = "d_service_findings"


@dataclass
class Detection:
    findings: list[dict[str, Any]]
    """Findings about workflows of the pass (each a dict of facts; see explain.py)."""
    service_findings: list[dict[str, Any]]
    """Findings about whole services (no workflow)."""
    status: pa.Table
    """One row per workflow of the pass: the WORKFLOW_STATUS columns, trace_id, last_activity_at."""


def detect(
    con: duckdb.DuckDBPyConnection, *, now: dt.datetime, thresholds: Thresholds
) -> Detection:
    """Run every detection statement and gather their findings."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    run_folder(con, "detect_sql", {**thresholds.sql_parameters(), "now": now})
    # one query for every finding table (a row has the columns of all, null where its
    # own has none: explain.py reads each with .get)
    findings = _rows(con, " UNION ALL BY NAME ".join(f"SELECT * FROM {t}" for t in FINDING_TABLES))
    name_backlogs(con, findings, now=now)
    return Detection(
        findings=one_gap_per_service(findings),
        service_findings=_rows(con, f"SELECT * FROM {SERVICE_FINDINGS}"),
        status=con.sql("SELECT * FROM d_workflow_status").to_arrow_table(),
    )


def _rows(con: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:
    result = con.execute(parsed(query))
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def name_backlogs(
    con: duckdb.DuckDBPyConnection, findings: list[dict[str, Any]], *, now: dt.datetime
) -> None:
    """Add to each consumer_down finding the backlog JetStream holds for its consumer
    group (``consumer_backlog``), as the collector last sampled it. Looked up only
    when there is such a finding (rare), so a tick pays nothing for it."""
    down = [f for f in findings if f.get("root_cause") == "consumer_down"]
    if not down:
        return
    for finding in down:
        held = con.execute(
            parsed(statement("consumer_backlog")),
            {"now": now, "group": finding["consumer"], "subject": finding["subject"]},
        ).fetchone()
        if held is not None:
            finding["consumer_backlog"], finding["backlog_sampled_at"] = held


def one_gap_per_service(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A service that lost spans leaves several holes in one workflow (its receive,
    its processing, its publish): that is one telemetry gap, reported at the last
    step its spans are missing from, with the other steps in its evidence."""
    gaps: dict[tuple[str, str], list[dict[str, Any]]] = {}
    others = []
    for f in findings:
        if f["kind"] == "telemetry_gap" and f.get("workflow_id"):
            gaps.setdefault((f["workflow_id"], f.get("service") or ""), []).append(f)
        else:
            others.append(f)
    for group in gaps.values():
        group.sort(key=lambda f: f.get("since") or dt.datetime.min.replace(tzinfo=dt.UTC))
        kept = dict(group[-1])
        kept["also_missing_at"] = sorted({str(f.get("step")) for f in group[:-1]})
        others.append(kept)
    return others
