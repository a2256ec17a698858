"""Every stored span, for a full pass: ``stored_spans`` on the correlator's connection.

The store's ``spans`` view deduplicates with a window over every span, which on a
million spans costs more than reading them. Copies are rare (a batch redelivered
after a collector restart), so a full pass first checks for them with a narrow
aggregate: without copies, ``stored_spans`` is a view over the segments themselves;
with some, a table of the spans deduplicated (only the copied rows go through the
window). The segments are listed once, so every statement of the pass reads the same.

After the pass, only what may still change is kept in memory (``keep``): the spans
of open workflows and of traces that received spans lately, read from only the
segments that hold such traces.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import duckdb

from correlator.pass_views import PassViews
from correlator.sql_text import statement
from correlator.straddlers import STRADDLING, straddling_segments
from store import StoreLayout
from store.layout import partition_start

# The span columns detection reads: the long tail (attributes, resource, events,
# links) stays on disk, which is most of a span's bytes.
WORK_COLUMNS = (
    "trace_id, span_id, parent_span_id, name, kind, service_name, service_instance_id, "
    "start_time, end_time, duration_ms, status_code, status_message, workflow_id, subject, "
    "message_id, operation, consumer_group, link_trace_id, link_span_id, received_at, "
    "nak_delay_ms"
)


class StoredSpans:
    """``stored_spans`` for one store: created by ``read``, dropped by ``release``."""

    def __init__(self, *, layout: StoreLayout) -> None:
        self.layout = layout
        self._kind: str | None = None  # VIEW over the segments, TABLE deduplicated
        self._files: list[str] = []
        self._statistics: dict[str, Any] = {}
        self.resumed = False  # read only the recent segments, and older_traces

    def segments(self) -> frozenset[str]:
        return self.layout.segments("spans")

    def seed(self) -> str:
        return str(self.layout.seed("spans"))

    def read(
        self,
        con: duckdb.DuckDBPyConnection,
        segments: frozenset[str],
        *,
        since: dt.datetime | None = None,
        written_since: dt.datetime | None = None,
    ) -> None:
        """Make ``stored_spans`` every span of ``segments``, once; with ``since`` (a
        resumed pass, resume.py), those of the hour partitions from ``since`` on and
        of the segments written from ``written_since`` on, with the older spans of
        their workflows (straddlers.py), and ``older_traces`` every older trace."""
        self.release(con)
        judged, older = _split(segments - {self.seed()}, since=since, written_since=written_since)
        files = [self.seed(), *sorted(judged)]
        source = parquet_of(files)
        if older:
            holding = straddling_segments(con, judged=files, older=[self.seed(), *sorted(older)])
            if holding:
                source = (
                    f"(SELECT * FROM {source} UNION ALL BY NAME SELECT * FROM "
                    f"{parquet_of(holding)} WHERE {STRADDLING})"
                )
                files += holding
        self.resumed = bool(older)
        con.execute(f"CREATE OR REPLACE TEMP VIEW pass_spans AS SELECT * FROM {source}")
        (copied,) = con.execute(statement("span_copies")).fetchone()
        if copied:
            con.execute(f"CREATE TEMP TABLE stored_spans AS {statement('stored_spans')}")
            self._kind = "TABLE"
        else:
            con.execute("CREATE TEMP VIEW stored_spans AS SELECT * FROM pass_spans")
            self._kind = "VIEW"
        self._files = files
        result = con.execute(statement("segment_statistics"), {"files": files})
        names = [d[0] for d in result.description]
        self._statistics = dict(zip(names, result.fetchone(), strict=True))

    def point_views_at_all(self, views: PassViews) -> None:
        """Have ``views`` judge every span ``read`` made ``stored_spans``, each read once."""
        views.point_at(
            f"(SELECT {WORK_COLUMNS} FROM stored_spans)",
            inherits=not self.all_carry_workflow_ids(),
        )

    def newest(self, con: duckdb.DuckDBPyConnection) -> dt.datetime | None:
        """The latest ``received_at`` of ``stored_spans``, from the segments' column
        statistics (no span is read), or by a scan where a segment has none."""
        if not self._statistics["newest_known"]:
            (newest,) = con.execute("SELECT max(received_at) FROM stored_spans").fetchone()
            return newest
        return self._statistics["newest"]

    def all_carry_workflow_ids(self) -> bool:
        """Whether the segments' statistics show every span with a workflow id."""
        return bool(self._statistics["all_carry_ids"])

    def keep(self, con: duckdb.DuckDBPyConnection, *, recent_since: dt.datetime) -> None:
        """Point ``correlated_spans`` at the spans of ``open_traces``, of the traces
        that received spans after ``recent_since``, and of their workflows'
        (engine_sql/kept_traces.sql, and kept_links.sql where spans lack workflow
        ids); when ``stored_spans`` is the
        segments themselves, only those holding such traces are read (a scan of the
        trace ids picks them): most of a store is history."""
        con.execute(statement("kept_traces"), {"since": recent_since})
        if not self.all_carry_workflow_ids():
            con.execute(statement("kept_links"))
        source = "stored_spans"
        if self._kind == "VIEW":
            holding = con.execute(
                "SELECT DISTINCT filename FROM read_parquet($files, filename = true, "
                "union_by_name = true, hive_partitioning = false) "
                "WHERE trace_id IN (SELECT trace_id FROM kept_traces)",
                {"files": self._files},
            ).fetchall()
            source = parquet_of([self.seed(), *sorted(f for (f,) in holding)])
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW correlated_spans AS SELECT {WORK_COLUMNS} "
            f"FROM {source} WHERE trace_id IN (SELECT trace_id FROM kept_traces)"
        )

    def release(self, con: duckdb.DuckDBPyConnection) -> None:
        """Drop ``stored_spans`` (and with it, a deduplicated copy of every span)."""
        if self._kind:
            # IF EXISTS: a tick that read the store and failed rolled the view back
            con.execute(f"DROP {self._kind} IF EXISTS temp.main.stored_spans")
            con.execute("DROP VIEW IF EXISTS temp.main.pass_spans")
            con.execute("DROP TABLE IF EXISTS temp.main.older_traces")
            self._kind = None
            self.resumed = False


def parquet_of(files: list[str]) -> str:
    """A ``read_parquet`` of exactly ``files``, as SQL text (a view cannot take
    parameters)."""
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    return f"read_parquet([{listed}], union_by_name = true, hive_partitioning = false)"


def _split(
    segments: frozenset[str], *, since: dt.datetime | None, written_since: dt.datetime | None
) -> tuple[frozenset[str], frozenset[str]]:
    """``segments`` as (those of the hour partitions from ``since`` on or written from
    ``written_since`` on, the others)."""
    if since is None:
        return segments, frozenset()
    written_after = written_since.timestamp() if written_since else float("inf")
    older = frozenset(
        f
        for f in segments
        if (start := partition_start(f)) is not None
        and start < since
        and _written_at(f) < written_after
    )
    return segments - older, older


def _written_at(file: str) -> float:
    """When ``file`` was written (a segment is never changed after); one removed
    meanwhile (retention, compaction) counts as new, and fails the read as it would."""
    try:
        return os.stat(file).st_mtime
    except OSError:
        return float("inf")
