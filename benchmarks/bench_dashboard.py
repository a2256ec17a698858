"""Dashboard render time per page on a large store (target: ≤ 1 s per page, warm cache).

    python -m benchmarks dashboard                       # 1M spans
    BENCH_DASHBOARD_SPANS=50000 python -m benchmarks dashboard

Builds a store of synthetic recruitment workflows (9 spans each, 1 in 50 stalled,
1 in 50 failed, spread over 6 hours) with DuckDB in one vectorized query, written
as segments by the collector's SegmentWriter; runs one correlator pass over it;
then renders every page with Streamlit's AppTest: once cold (the page's queries
run) and once warm (the same page again within the cache's lifetime).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import time
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa
from streamlit.testing.v1 import AppTest

import dashboard
from collector.segment_writer import SegmentWriter
from correlator.engine import Correlator
from dashboard.store_location import DATA_DIR_KEY
from store import StoreLayout
from store.schema import HEARTBEATS, SPANS

TARGET_S = 1.0
SPANS_PER_WORKFLOW = 9
SEGMENT_ROWS = 125_000
HISTORY = dt.timedelta(hours=6)
PAGES = {
    "Overview": None,
    "Workflows": "views/workflows.py",
    "Workflow detail": "views/workflow_detail.py",
    "Choreography map": "views/choreography.py",
    "Anomalies": "views/anomalies.py",
    "Services": "views/services.py",
    "SQL console": "views/sql_console.py",
}
STALLED_EXAMPLE = "wf-7"  # workflow i with i % 50 == 7 is stalled (see dashboard_spans.sql)


def build_store(data_dir: Path, *, spans: int, now: dt.datetime) -> int:
    """Write about ``spans`` synthetic spans and heartbeats; return the span count."""
    layout = StoreLayout.at(data_dir)
    layout.ensure()
    workflows = max(1, spans // SPANS_PER_WORKFLOW)
    sql = (resources.files("benchmarks") / "dashboard_spans.sql").read_text(encoding="utf-8")
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    start = now - HISTORY
    table = con.sql(
        sql,
        params={
            "workflows": workflows,
            "start": start,
            "spacing_us": (HISTORY - dt.timedelta(minutes=2))
            / dt.timedelta(microseconds=1)
            / workflows,
        },
    ).to_arrow_table()
    con.close()
    for field in SPANS:  # columns the generator leaves out (nak_delay_ms): null
        if field.name not in table.column_names:
            table = table.append_column(field.name, pa.nulls(table.num_rows, field.type))
    table = table.select(SPANS.names).cast(SPANS)
    writer = SegmentWriter(layout=layout, writer_id="bench")
    try:
        for offset in range(0, table.num_rows, SEGMENT_ROWS):
            chunk = table.slice(offset, SEGMENT_ROWS)
            writer.write("spans", chunk, at=chunk.column("start_time")[0].as_py())
        writer.write("heartbeats", _heartbeats(now), at=now)
    finally:
        writer.close()
    return table.num_rows


def _heartbeats(now: dt.datetime) -> pa.Table:
    services = ["intake", "parser", "scorer", "notifier"]
    rows = [
        {
            "service": service,
            "instance": f"{service}-1",
            "at": now - dt.timedelta(seconds=beat * 5),
            "received": 1000,
            "processed": 990,
            "failed": 10,
            "dead_lettered": 0,
            "spans_exported": 100_000,
            "spans_dropped": 0,
            "in_flight": 1,
            "interval_s": 5.0,
        }
        for service in services
        for beat in range(720)  # an hour of heartbeats per service
    ]
    return pa.Table.from_pylist(rows, schema=HEARTBEATS)


def correlate(data_dir: Path, *, now: dt.datetime) -> None:
    correlator = Correlator(data_dir=data_dir)
    try:
        correlator.cold_pass(now=now)
        correlator.write_findings()
        correlator.write_model()
    finally:
        correlator.close()


def render_seconds(data_dir: Path, page: str | None, *, workflow: str | None = None) -> float:
    """One AppTest run of ``page`` alone (selected before the first run)."""
    app = Path(dashboard.__file__).with_name("app.py")
    at = AppTest.from_file(str(app), default_timeout=600)
    at.session_state[DATA_DIR_KEY] = str(data_dir)
    if workflow is not None:
        at.query_params["workflow"] = workflow
    if page is not None:
        at.switch_page(page)
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    if at.exception:
        raise RuntimeError(f"{page or 'Overview'} raised: {at.exception[0].value}")
    return elapsed


def main() -> None:
    # a page run outside `streamlit run` logs "missing ScriptRunContext" per cached
    # call, dozens of lines between the figures
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: "missing ScriptRunContext" not in record.getMessage()
    )
    spans = int(os.environ.get("BENCH_DASHBOARD_SPANS", "1000000"))
    now = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        started = time.perf_counter()
        written = build_store(data_dir, spans=spans, now=now)
        built = time.perf_counter() - started
        print(f"store: {written:,} spans written in {built:.1f} s ({written / built:,.0f} spans/s)")
        started = time.perf_counter()
        correlate(data_dir, now=now)
        print(f"correlator cold pass: {time.perf_counter() - started:.1f} s")
        startup = render_seconds(data_dir, "views/services.py")
        print(f"first page of the process (imports, views built): {startup:.2f} s")
        print(f"{'page':<18} {'cold s':>8} {'warm s':>8} {'target s':>9} {'warm/target':>12}")
        for title, page in PAGES.items():
            workflow = STALLED_EXAMPLE if title == "Workflow detail" else None
            cold = render_seconds(data_dir, page, workflow=workflow)
            # Best of two: a run may straddle the 5 s step the time window moves by.
            warm = min(render_seconds(data_dir, page, workflow=workflow) for _ in range(2))
            print(
                f"{title:<18} {cold:>8.2f} {warm:>8.2f} {TARGET_S:>9.1f} {warm / TARGET_S:>11.2f}x"
            )
        print(
            "(cold: the page's queries run; warm: served from the dashboard's cache; each "
            "AppTest run also pays ~0.3 s of Streamlit's component discovery)"
        )


if __name__ == "__main__":
    main()
