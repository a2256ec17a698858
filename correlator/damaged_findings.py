"""Findings tables a pass rewrites whole, set aside when their newest generation
cannot be read: one cut short by a disk problem otherwise kept the correlator from
starting, when it would have written the table afresh."""

from __future__ import annotations

import datetime as dt
import logging

import duckdb

from correlator.findings import FINDINGS, migrate_fixed, write_findings
from correlator.findings_files import current_file
from correlator.model import MODEL_FILES
from store import StoreLayout
from store.quarantine import QUARANTINE_DIR, unreadable_reason

log = logging.getLogger(__name__)

# the findings files every pass writes whole from what it judged (ledger.py keeps
# the anomalies, which it cannot rebuild: what was alerted)
REWRITTEN = ("workflow_status", "workflow_status_recent", *MODEL_FILES)


def set_aside_damaged_findings(layout: StoreLayout) -> None:
    """Move into ``<data>/quarantine/findings/`` each findings file a pass rewrites
    whole (statuses, model) that cannot be read, keeping its bytes: one cut short by a
    disk problem otherwise kept the correlator from starting, when it would have
    written the file afresh. The anomalies files are left for the user to decide
    (see UnreadableSegmentError): without them, old anomalies would be alerted again."""
    con = duckdb.connect(":memory:")
    try:
        for name in REWRITTEN:
            migrate_fixed(layout, name)  # a store from before the folders
            # the newest generation, the one read (an older one damaged goes unread)
            path = current_file(layout, name)
            reason = unreadable_reason(con, path, whole=False) if path else None
            if path is None or reason is None:
                continue
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
            aside = layout.root / QUARANTINE_DIR / "findings" / f"{name}.{stamp}.parquet"
            try:
                aside.parent.mkdir(parents=True, exist_ok=True)
                path.replace(aside)
            except OSError as e:
                log.warning("could not move the damaged %s aside: %s", path, e)
                continue
            # an empty table in its place, as if written afresh: not the older
            # generation, which the views and a resumed pass would take for current
            write_findings(layout, name, FINDINGS[name].empty_table())
            log.warning(
                "%s cannot be read (%s): moved to %s; the correlator writes it afresh",
                path, reason, aside,
            )  # fmt: skip
    finally:
        con.close()
