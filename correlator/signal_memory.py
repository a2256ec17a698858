"""The bus signals a correlator keeps in memory: heartbeats, bus events and JetStream
consumer lag.

Detection reads every service instance's heartbeats (liveness, outages, spans its
exporter dropped), the advisories that dead-lettered messages, and the backlog
JetStream holds for a consumer group that is down. The store keeps
them as one small segment per collector flush, so reading them through the store's
views would open every segment ever written, three times per tick, and a watcher
would slow down hour after hour. Instead the correlator loads them once, then each
tick reads only the segments new since (segments are immutable: written under a
temporary name, then renamed). Temporary tables named after the views shadow them
for the correlator's own statements only.

Heartbeats, lag samples and advisories older than ``keep_s`` are dropped from
memory, except each instance's latest heartbeat and the advisories about a trace,
workflow or message memory still holds: a tick re-judges only workflows active within
the correlator's own horizon, and an instance silent for longer than that is still
known to be silent, while a dead-lettered message of a workflow still held stays
dead-lettered (``dead_letters`` reads its advisory). When late spans bring a workflow
back from the store, its advisories come back with it (``SignalMemory.bring_back``):
without them, a dead letter's late duplicate would read as a message never settled.
Once retention dropped the hours those latest beats were filed in, they go too
(``fold_in``), as a cold pass no longer reads them: kept, an instance that stopped for
good after its exporter dropped spans kept its ``telemetry_gap`` open in a watcher for
ever, so it was never retired.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa

from store import StoreLayout
from store.layout import partition_start
from store.schema import TABLES as SCHEMAS

TABLES = ("heartbeats", "bus_events", "consumer_lag")
# what identifies a row: the collector compacts an hour's segments into one, whose
# rows this has already read from the segments it replaced
ROW_KEYS = {
    "heartbeats": ("instance", "at"),
    "bus_events": ("kind", "stream", "consumer", "stream_seq", "at"),
    "consumer_lag": ("stream", "consumer", "at"),
}


# an advisory dead_letters can tie to a span memory holds: through the message read
# back (its trace, workflow, message id) or the publish span it names (trace_id)
ABOUT_HELD = """
    coalesce(b.trace_id IN (SELECT trace_id FROM held_traces), false)
    OR coalesce(
        b.workflow_id IN (SELECT workflow_id FROM held_traces WHERE workflow_id IS NOT NULL),
        false
    )
    OR coalesce(
        b.message_id IN (SELECT message_id FROM work_spans WHERE message_id IS NOT NULL),
        false
    )
"""


class SignalMemory:
    """Heartbeats and bus events of one store, read incrementally into ``con``."""

    def __init__(self, *, layout: StoreLayout, keep_s: float) -> None:
        self.layout = layout
        self.keep_s = keep_s
        self._read: dict[str, frozenset[str]] = {}
        # whether an eviction let go of an advisory: until then, none is to be read back
        self._advisories_evicted = False

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read every stored signal (a cold pass)."""
        for table in TABLES:
            segments = self.layout.segments(table)
            files = self._with_seed(table, segments)
            if files:
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM read_parquet("
                    "$files, union_by_name = true, hive_partitioning = false)",
                    {"files": files},
                )
            else:  # an older store this process could not give the table's seed
                con.register("empty_seed", pa.Table.from_pylist([], schema=SCHEMAS[table]))
                con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM empty_seed")
                con.unregister("empty_seed")
            self._read[table] = segments
        self._advisories_evicted = False

    def fold_in(self, con: duckdb.DuckDBPyConnection) -> int:
        """Append the signals of segments written since the last read; returns how many
        segments were new."""
        if not self._read:
            self.load(con)
            return 0
        fresh_total = 0
        for table in TABLES:
            segments = self.layout.segments(table)
            if table == "heartbeats":
                self._forget_dropped_beats(con, read=self._read[table], now=segments)
            fresh = segments - self._read[table]
            if fresh:
                same = " AND ".join(
                    f'n."{k}" IS NOT DISTINCT FROM o."{k}"' for k in ROW_KEYS[table]
                )
                con.execute(
                    f"""
                    INSERT INTO {table} BY NAME
                    WITH new AS (
                        SELECT * FROM read_parquet(
                            $files, union_by_name = true, hive_partitioning = false
                        )
                    )
                    SELECT n.* FROM new AS n
                    ANTI JOIN (
                        SELECT * FROM {table} WHERE "at" >= (SELECT min("at") FROM new)
                    ) AS o ON {same}
                    """,
                    {"files": self._with_seed(table, fresh)},
                )
                fresh_total += len(fresh)
            self._read[table] = segments
        return fresh_total

    def mark(self) -> dict[str, frozenset[str]]:
        """The segments read so far: ``rewind`` to it when a transaction that read
        more is rolled back, or the next fold would skip what it had read."""
        return dict(self._read)

    def rewind(self, mark: dict[str, frozenset[str]]) -> None:
        self._read = dict(mark)

    def evict(self, con: duckdb.DuckDBPyConnection, *, now: dt.datetime) -> None:
        """Forget heartbeats, consumer lag samples and advisories older than
        ``keep_s``, keeping each instance's latest beat (detection reads only a
        consumer's newest sample) and the advisories about what memory holds (run
        after ``SpanMemory.evict``, which leaves ``held_traces`` as held). Kept for
        ever, advisories grew a watcher's memory day after day."""
        horizon = {"horizon": now - dt.timedelta(seconds=self.keep_s)}
        (evicted,) = con.execute(
            f'DELETE FROM bus_events AS b WHERE b."at" < $horizon AND NOT ({ABOUT_HELD})',
            horizon,
        ).fetchone()
        self._advisories_evicted = self._advisories_evicted or evicted > 0
        con.execute(
            """
            DELETE FROM heartbeats AS h
            WHERE h."at" < $horizon
                AND h."at" < (SELECT max(l."at") FROM heartbeats AS l WHERE l.instance = h.instance)
            """,
            horizon,
        )
        con.execute('DELETE FROM consumer_lag WHERE "at" < $horizon', horizon)

    def bring_back(self, con: duckdb.DuckDBPyConnection, traces: list[str]) -> None:
        """Read again the advisories about the ``traces`` just brought back into memory
        (``SpanMemory``) that an eviction let go, from the segments read so far (those
        not read yet the next fold reads whole). Advisories are few, and reloads rare:
        it reads them all."""
        files = self._with_seed("bus_events", self._read.get("bus_events", frozenset()))
        if not self._advisories_evicted or not traces or not files:
            return
        keys = ", ".join(f'"{k}"' for k in ROW_KEYS["bus_events"])
        same = " AND ".join(f'n."{k}" IS NOT DISTINCT FROM o."{k}"' for k in ROW_KEYS["bus_events"])
        con.execute(
            f"""
            INSERT INTO bus_events BY NAME
            WITH stored AS (
                SELECT * FROM read_parquet($files, union_by_name = true, hive_partitioning = false)
                -- compaction's inputs stay beside its output for a while
                QUALIFY row_number() OVER (PARTITION BY {keys}) = 1
            ),
            brought AS (
                SELECT trace_id, workflow_id, message_id FROM work_spans
                WHERE list_contains($traces, trace_id)
            )
            SELECT n.* FROM stored AS n
            ANTI JOIN bus_events AS o ON {same}
            WHERE list_contains($traces, n.trace_id)
                OR n.workflow_id IN (
                    SELECT workflow_id FROM brought WHERE workflow_id IS NOT NULL
                )
                OR n.message_id IN (SELECT message_id FROM brought WHERE message_id IS NOT NULL)
            """,
            {"files": files, "traces": traces},
        )

    def _forget_dropped_beats(
        self, con: duckdb.DuckDBPyConnection, *, read: frozenset[str], now: frozenset[str]
    ) -> None:
        """Forget the heartbeats of the hours retention dropped since the last read (its
        segments are gone and no segment of their hour is left: a compaction replaces
        an hour's segments, retention drops the hour), each instance's latest too.
        Retention drops the oldest hours, and the collector files a beat in the hour it
        stores it, not before it received it: every beat received before the oldest
        hour still held was in a dropped one."""
        held = {h for f in now if (h := partition_start(f)) is not None}
        dropped = {h for f in read - now if (h := partition_start(f)) is not None} - held
        if not dropped:
            return
        con.execute(
            'DELETE FROM heartbeats WHERE $oldest IS NULL OR coalesce(received_at, "at") < $oldest',
            {"oldest": min(held, default=None)},
        )

    def _with_seed(self, table: str, segments: frozenset[str]) -> list[str]:
        """``segments`` with the table's seed first (it keeps every column there),
        when it exists."""
        seed = self.layout.seed(table)
        return ([str(seed)] if seed.exists() else []) + sorted(segments - {str(seed)})
