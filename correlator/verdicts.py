"""Each workflow's verdict: ``all_status`` on the correlator's connection, and the
status files under ``<data>/findings/``.

Passes are numbered, and ``all_status`` keeps each verdict with the pass that made
it: a cold pass's table of verdicts becomes it (``adopt``), a tick appends its own
(``append``). A workflow's verdict is the one of its latest pass; the superseded
ones are forgotten when the watcher evicts (``forget_superseded``). The full table,
``workflow_status``, is rewritten every ``rewrite_s`` at most; the small
``workflow_status_recent`` holds the verdicts made since, and is rewritten at each
write (each a new generation: ``findings_files``). Each file holds a workflow once.
"""

from __future__ import annotations

import datetime as dt
import time

import duckdb

from correlator.findings import WORKFLOW_STATUS, ZSTD_LEVEL
from correlator.findings_files import current_file, new_generation
from correlator.resume import STATUS_FILES
from store import StoreLayout

STATUS_COLUMNS = ", ".join(WORKFLOW_STATUS.names)  # the files' columns, in their order
ROW_GROUP_ROWS = 122_880  # DuckDB's default


class Verdicts:
    def __init__(self, *, layout: StoreLayout, rewrite_s: float) -> None:
        self.layout = layout
        self.rewrite_s = rewrite_s
        self.changed = False
        self._full_written_at = 0.0
        self._full_pass = -1  # the pass the full file was written after
        self._superseded = False  # whether all_status may hold a workflow more than once

    def adopt(self, con: duckdb.DuckDBPyConnection, *, pass_number: int) -> None:
        """Make ``d_workflow_status``, a verdict for every workflow, ``all_status`` (a
        copy of 100k verdicts cost ~30 ms of a 1M-span pass)."""
        con.execute("DROP TABLE IF EXISTS temp.main.all_status")
        con.execute("ALTER TABLE temp.main.d_workflow_status RENAME TO all_status")
        con.execute(
            "ALTER TABLE temp.main.all_status "
            f"ADD COLUMN judged_in_pass INTEGER DEFAULT {int(pass_number)}"
        )
        self._superseded = False
        self._full_written_at = 0.0  # the next write is a full one
        self.changed = True

    def carry_over(self, con: duckdb.DuckDBPyConnection, *, pass_number: int) -> int:
        """Add to ``all_status`` the verdicts of the status files for the workflows a
        resumed cold pass did not judge (resume.py): they keep the verdicts of the
        passes before. Returns how many. Their last activity is not in the files: the
        time they were judged stands in for it (later, so they are forgotten later)."""
        full, recent = (current_file(self.layout, name) for name in STATUS_FILES)
        if full is None or recent is None:  # no status written (ensure_findings seeds them)
            return 0
        (carried,) = con.execute(
            f"""
            INSERT INTO all_status BY NAME
            WITH recent AS (SELECT * FROM read_parquet($recent)),
            verdicts AS (  -- each file holds a workflow once; the recent one's is newer
                SELECT * FROM recent
                UNION ALL BY NAME
                SELECT * FROM read_parquet($full)
                WHERE workflow_id NOT IN (SELECT workflow_id FROM recent)
            )
            SELECT {STATUS_COLUMNS}, evaluated_at AS last_activity_at,
                $pass AS judged_in_pass
            FROM verdicts
            WHERE workflow_id NOT IN (SELECT workflow_id FROM all_status)
            """,
            {"full": str(full), "recent": str(recent), "pass": pass_number},
        ).fetchone()
        return carried

    def append(self, con: duckdb.DuckDBPyConnection, *, pass_number: int) -> None:
        """Add the verdicts of ``d_workflow_status``, made by pass ``pass_number``."""
        con.execute(
            "INSERT INTO all_status SELECT *, $pass FROM d_workflow_status",
            {"pass": pass_number},
        )
        self.changed = self._superseded = True

    def vanished(self, con: duckdb.DuckDBPyConnection) -> set[str]:
        """Workflows a tick's spans no longer make: a trace without workflow ids was
        a workflow of its own (keyed by its trace id) until a span that names its
        workflow arrived, or the span it links back to (inherited_workflows): a
        handler's own spans often arrive before its processing span, which ends
        after them. Only the scope's traces that lack ids and are no workflow now are
        looked up among the verdicts (usually none)."""
        candidates = [
            trace_id
            for (trace_id,) in con.execute(
                """
                SELECT DISTINCT trace_id FROM scope_spans WHERE workflow_id IS NULL
                EXCEPT SELECT workflow_id FROM d_workflow_status
                """
            ).fetchall()
        ]
        if not candidates:
            return set()
        rows = con.execute(
            "SELECT DISTINCT workflow_id FROM all_status "
            "WHERE workflow_id IN (SELECT unnest($candidates))",
            {"candidates": candidates},
        ).fetchall()
        return {workflow_id for (workflow_id,) in rows}

    def retract(self, con: duckdb.DuckDBPyConnection, *, workflows: set[str]) -> None:
        """Forget every verdict of ``workflows``, which no longer exist. When the full
        file lists one, the next write is a full one; otherwise the recent file,
        rewritten at each write, drops them. (A verdict the full file holds but
        eviction already forgot here is not seen, and stays in that file until its
        next rewrite, ``rewrite_s`` at most: only ``workflow_status``'s own rows show
        it, as the ``workflows`` view lists the workflows the spans make.)"""
        passes = con.execute(
            "DELETE FROM all_status WHERE workflow_id IN (SELECT unnest($workflows)) "
            "RETURNING judged_in_pass",
            {"workflows": sorted(workflows)},
        ).fetchall()
        if any(judged_in <= self._full_pass for (judged_in,) in passes):
            self._full_written_at = 0.0
        self.changed = True

    def forget_superseded(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            """
            DELETE FROM all_status WHERE rowid IN (
                SELECT rowid FROM all_status
                QUALIFY row_number() OVER (
                    PARTITION BY workflow_id ORDER BY judged_in_pass DESC
                ) > 1
            )
            """
        )
        self._superseded = False

    def forget_before(self, con: duckdb.DuckDBPyConnection, at: dt.datetime) -> None:
        """Forget the verdicts of workflows quiet since before ``at``, the oldest hour
        the store still holds: their spans are gone, and the ``workflows`` view no
        longer lists them. The next write is a full one."""
        (forgotten,) = con.execute(
            "DELETE FROM all_status WHERE last_activity_at < $at", {"at": at}
        ).fetchone()  # DuckDB answers a DELETE with the count of rows it deleted
        if forgotten:
            self._full_written_at = 0.0
            self.changed = True

    def rewrite_all(self) -> None:
        """Have the next ``write`` write every verdict to the full file (its files were
        lost)."""
        self._full_written_at = float("-inf")
        self.changed = True

    def rolled_back(self) -> None:
        """A transaction that changed ``all_status`` was rolled back."""
        self._superseded = True  # as rolled back, it may again

    def write(self, con: duckdb.DuckDBPyConnection, *, pass_number: int) -> None:
        """Replace the recent file and, when due, the full one."""
        if time.monotonic() - self._full_written_at > self.rewrite_s:
            self._copy(con, "workflow_status", since_pass=0)
            self._full_pass = pass_number
            self._full_written_at = time.monotonic()
        self._copy(con, "workflow_status_recent", since_pass=self._full_pass)
        self.changed = False

    def _copy(self, con: duckdb.DuckDBPyConnection, name: str, *, since_pass: int) -> None:
        """Write the verdicts made after pass ``since_pass`` as findings table ``name``'s
        next generation."""
        latest = (  # a workflow's latest verdict, when there may be others
            "QUALIFY row_number() OVER (PARTITION BY workflow_id ORDER BY judged_in_pass DESC) = 1"
            if self._superseded
            else ""
        )
        (rows,) = con.execute(
            "SELECT count(*) FROM all_status WHERE judged_in_pass > $since", {"since": since_pass}
        ).fetchone()
        # sorted by workflow only when the file holds several row groups: a reader of
        # one workflow then skips the others on their statistics (in one row group,
        # sorting 100k verdicts would cost ~30 ms for nothing)
        order = "ORDER BY workflow_id" if rows > ROW_GROUP_ROWS else ""
        with new_generation(self.layout, name) as tmp:
            con.execute(
                f"""
                COPY (
                    SELECT {STATUS_COLUMNS} FROM all_status WHERE judged_in_pass > $since
                    {latest}
                    {order}
                ) TO $path (
                    FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {ZSTD_LEVEL},
                    ROW_GROUP_SIZE {ROW_GROUP_ROWS}
                )
                """,
                {"since": since_pass, "path": str(tmp)},
            )
