"""The correlator's materialized findings: Parquet files under ``<data>/findings/``.

Readers (the dashboard, ``choreoscope sql``, any DuckDB client) read them through
the views in ``correlator/sql``. Each write of a table is a new immutable file, its
next generation (``findings_files``), so a reader never sees half a file, never
waits on a lock, and never reads a file changed under its query. A zero-row table
is written for each one that has none, so the views bind on a store the correlator
has never run on.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import time
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from correlator.findings_files import (
    current_file,
    fixed_file,
    generations,
    migrate_fixed_file,
    new_generation,
    prune_superseded,
    table_folder,
    written_empty,
)
from store.durable_files import remove_abandoned_temp_files
from store.layout import StoreLayout
from store.schema import TIMESTAMP

# zstd's fastest level: findings are rewritten while a watcher runs, and on ids (random
# hex) level 1 compresses as well as the default (3) at half the time
ZSTD_LEVEL: Final = 1
# how often superseded generations are swept away (FindingsPruner)
PRUNE_EVERY_S: Final = 30.0

log = logging.getLogger(__name__)

ANOMALIES = pa.schema(
    [
        ("anomaly_id", pa.string()),  # stable: the same fault keeps its id across runs
        ("kind", pa.string()),  # DESIGN.md's anomaly kinds
        ("workflow_id", pa.string()),  # null for service-level findings
        ("workflow_type", pa.string()),
        ("trace_id", pa.string()),
        ("service", pa.string()),  # the service the finding is about (the consumer, mostly)
        ("subject", pa.string()),
        ("message_id", pa.string()),
        ("step", pa.string()),  # the subject of the step (what the workflow waits on)
        ("consumer", pa.string()),  # the consumer group (or consuming service)
        ("root_cause", pa.string()),  # dropped | hung | dead_lettered | consumer_down | ...
        ("detected_at", TIMESTAMP),
        ("resolved_at", TIMESTAMP),  # set when a later pass no longer finds it
        ("alerted_at", TIMESTAMP),  # set once the alert went out (never re-alerted)
        # set once the webhook took the alert (or refused it for good), or with
        # alerted_at when none was configured: null while the webhook is owed it
        ("webhook_at", TIMESTAMP),
        ("detail", pa.string()),  # the explanation a user reads
        ("evidence", pa.string()),  # JSON object: the facts behind the finding
        # grows with each change of the row: the highest is its current state
        ("revision", pa.int64()),
    ]
)

WORKFLOW_STATUS = pa.schema(
    [
        ("workflow_id", pa.string()),
        ("workflow_type", pa.string()),
        ("status", pa.string()),  # completed | in_flight | stalled | failed
        ("waiting_on", pa.string()),  # "subject → consumer" of the step it waits on
        ("root_cause", pa.string()),
        ("evaluated_at", TIMESTAMP),
    ]
)

# workflows whose anomalies were retired with their spans (ledger.py): 64-bit hashes
# of their ids, and the hour each was retired in
RETIRED_WORKFLOWS = pa.schema([("workflow_key", pa.uint64()), ("retired_hour", pa.int32())])

MODEL_STEPS = pa.schema(
    [
        ("subject", pa.string()),
        ("consumer", pa.string()),  # consumer group, or the consuming service
        ("consumer_service", pa.string()),
        ("samples", pa.int64()),
        ("p50_ms", pa.float64()),
        ("p95_ms", pa.float64()),
        ("p99_ms", pa.float64()),
        ("deadline_s", pa.float64()),
        ("sla_s", pa.float64()),  # declared SLA, null when none
        ("source", pa.string()),  # learned | declared
        # messages published from then on are expected to reach the consumer (the
        # first it processed was published then); null: all of them (declared)
        ("expected_since", TIMESTAMP),
    ]
)

MODEL_FOLLOWS = pa.schema(
    [
        ("workflow_type", pa.string()),
        ("from_subject", pa.string()),  # null: the first event of the workflow
        # null: from_subject is a step declared with `next: []` (nothing may follow it)
        ("to_subject", pa.string()),
        ("support", pa.int64()),  # workflows in which the transition was seen
        ("terminal", pa.bool_()),  # to_subject ends the workflow
        ("source", pa.string()),
    ]
)

MODEL_TYPES = pa.schema(
    [
        ("workflow_type", pa.string()),
        ("start_subject", pa.string()),
        ("workflows", pa.int64()),
        ("declared", pa.bool_()),
    ]
)

MODEL_PRODUCERS = pa.schema([("subject", pa.string()), ("producer_service", pa.string())])

FINDINGS: Final[dict[str, pa.Schema]] = {
    "anomalies": ANOMALIES,
    # anomalies changed since `anomalies` was last rewritten (ledger.py)
    "anomalies_recent": ANOMALIES,
    "anomalies_retired": RETIRED_WORKFLOWS,
    "workflow_status": WORKFLOW_STATUS,
    # statuses changed since `workflow_status` was last rewritten: a tick
    # rewrites this small file, not the status of every workflow ever seen
    "workflow_status_recent": WORKFLOW_STATUS,
    "model_steps": MODEL_STEPS,
    "model_follows": MODEL_FOLLOWS,
    # the rest of the model a pass judged with, read back by the next (resume.py)
    "model_types": MODEL_TYPES,
    "model_producers": MODEL_PRODUCERS,
}


def ensure_findings(layout: StoreLayout) -> None:
    """Give every findings table a generation: the one file of a store from before
    the generation folders, else a zero-row seed."""
    layout.findings.mkdir(parents=True, exist_ok=True)
    for name, schema in FINDINGS.items():
        if migrate_fixed(layout, name) or generations(layout, name):
            continue
        _write(layout, name, pa.Table.from_pylist([], schema=schema), seed=True)


def findings_folder(layout: StoreLayout) -> tuple[int, int] | None:
    """Which folder the findings folder is now (None: there is none): one deleted and
    made again (a reader's ``ensure_findings``) is another."""
    try:
        stat = layout.findings.stat()
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino)


def findings_lost(layout: StoreLayout, *, folder: tuple[int, int] | None) -> bool:
    """Whether the findings written into ``folder`` (``findings_folder``) may be lost:
    the folder is another now, or a table of it has no generation left."""
    if folder is None or findings_folder(layout) != folder:
        return True
    return any(not generations(layout, name) for name in FINDINGS)


class FindingsPruner:
    """Deletes every table's generations superseded longer than the grace ago, at most
    every ``every_s``, in one sweep.

    A reader's query opens only the newest generation of a table while DuckDB plans
    its scan as the probe side of the join on the file name; when the newest holds
    few rows and the query filters them, it builds on the scan instead, opens every
    generation its glob listed, and fails on one deleted since ("No such file"):
    measured, 1 query in 200 while each write pruned. Sweeping seldom makes the
    instants a listed file can vanish rare. A table written seldom (the recent
    anomalies of a quiet store) is swept all the same: the minute of generations it
    kept until its next write cost such a query ~10 ms to open."""

    def __init__(self, layout: StoreLayout, *, every_s: float = PRUNE_EVERY_S) -> None:
        self.layout = layout
        self.every_s = every_s
        self._swept_at = -math.inf

    def sweep_if_due(self) -> None:
        if time.monotonic() - self._swept_at < self.every_s:
            return
        for name in FINDINGS:
            prune_superseded(self.layout, name)
        self._swept_at = time.monotonic()


def remove_abandoned_writes(layout: StoreLayout) -> list[Path]:
    """Remove the temp files of findings writes that were killed (``.tmp``, an hour
    old), in the findings folder and each table's; returns them."""
    folders = [layout.findings, *(table_folder(layout, name) for name in FINDINGS)]
    return [path for folder in folders for path in remove_abandoned_temp_files(folder)]


def write_findings(layout: StoreLayout, name: str, table: pa.Table) -> None:
    """Write ``table`` (cast to its schema) as findings table ``name``'s next
    generation, which readers see in place of the one before."""
    _write(layout, name, table, seed=False)


def _write(layout: StoreLayout, name: str, table: pa.Table, *, seed: bool) -> None:
    schema = FINDINGS[name]
    table = table.select(schema.names).cast(schema)
    if not seed and table.num_rows == 0 and written_empty(layout, name):
        # the same nothing again: a healthy store's anomalies, at every write, made a
        # generation each (a reader's plan opens them all when the newest is empty)
        return
    with new_generation(layout, name, seed=seed) as tmp:
        pq.write_table(table, tmp, compression="zstd", compression_level=ZSTD_LEVEL)


def migrate_fixed(layout: StoreLayout, name: str) -> bool:
    """``migrate_fixed_file``, the file's rows written in this version's schema: every
    generation of a folder must have the newest's columns, or a query whose plan opens
    them all fails ("schema mismatch in glob": the previous release's anomalies have
    no ``webhook_at``). A file that cannot be read is linked as it is, for
    ``set_aside_damaged_findings`` or the user to deal with."""
    legacy = fixed_file(layout, name)
    try:
        pq.read_metadata(legacy)
    except (OSError, pa.ArrowException):
        return migrate_fixed_file(layout, name)
    return migrate_fixed_file(layout, name, convert=functools.partial(_converted, name=name))


def _converted(legacy: Path, tmp: Path, *, name: str) -> None:
    schema = FINDINGS[name]
    table = pq.read_table(legacy)
    if schema is ANOMALIES:
        table = anomalies_of_any_version(table)
    for field in schema:  # a column of a later version: null in the old rows
        if field.name not in table.column_names:
            table = table.append_column(field.name, pa.nulls(table.num_rows, field.type))
    table = table.select(schema.names).cast(schema)
    pq.write_table(table, tmp, compression="zstd", compression_level=ZSTD_LEVEL)


def anomalies_of_any_version(table: pa.Table) -> pa.Table:
    """An anomalies generation written before ``webhook_at`` with the column: owed to
    no webhook (its alerted_at), or an upgrade, or a first watcher with ``--webhook``,
    would post every old open anomaly."""
    if "webhook_at" in table.column_names:
        return table
    return table.append_column("webhook_at", table["alerted_at"])


def read_findings(layout: StoreLayout, name: str) -> pa.Table | None:
    """Findings table ``name`` as last written, cast to its schema; None when it has
    no generation or it is unreadable (logged)."""
    path = current_file(layout, name)
    if path is None:
        return None
    try:
        table = pq.read_table(path)
        if FINDINGS[name] is ANOMALIES:
            table = anomalies_of_any_version(table)
        return table.select(FINDINGS[name].names).cast(FINDINGS[name])
    except (OSError, KeyError, pa.ArrowException) as e:
        log.warning("could not read %s: %s", path, e)
        return None


def last_model_declared(layout: StoreLayout) -> bool:
    """Whether the model last written here applied a declared choreography (a step or
    transition of ``source`` declared): a pass without one learns the types again."""
    path = current_file(layout, "model_follows")
    if path is None:
        return False
    try:
        sources = pq.read_table(path, columns=["source"]).column("source")
    except (OSError, pa.ArrowException, KeyError):
        return False
    return "declared" in sources.to_pylist()


def remembered_since(layout: StoreLayout) -> dict[tuple[str, str], dt.datetime]:
    """The ``expected_since`` of each (subject, consumer) in the model last written
    (none from a store the correlator never ran on, or from before the column)."""
    path = current_file(layout, "model_steps")
    if path is None:
        return {}
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as e:
        log.warning("could not read the last model (%s): %s; learning it afresh", path, e)
        return {}
    if "expected_since" not in table.column_names:
        return {}
    return {
        (row["subject"], row["consumer"]): row["expected_since"]
        for row in table.select(["subject", "consumer", "expected_since"]).to_pylist()
        if row["expected_since"] is not None
    }
