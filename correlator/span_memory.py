"""The spans a watcher keeps between ticks, on the correlator's connection.

- ``work_spans``: the spans of traces that may still change (open workflows, traces
  that received spans lately), taken from a full pass (``hold``), then grown by each
  tick's arrivals (``take_in``, ``admit``) and thinned out by ``evict``;
- ``held_traces``: the (trace, workflow id) pairs of ``work_spans``, a row per trace
  (and more between evictions: a tick adds the pairs of its arrivals as they come).
  A tick looks up what memory holds of a trace or workflow there, in a tenth of
  the rows (``admit``, ``scope``);
- ``cross_links``: the span links between two of those traces. A tick re-judges
  linked traces together (``scope``); following links through this small table
  reads no span;
- ``new_spans``: the spans that arrived since the last tick and are not held yet;
- ``scope_spans``: the spans a tick re-judges.

A late span that continues a trace memory no longer holds but the store did, or a
new trace of a workflow memory let go (one its stored spans name, or link to: the
producer's trace of another instrumentation's consumers, come late), brings the
stored traces back (``trace_reload``): what the store held, memory knows from hashes
of its ids (``stored_ids``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from correlator.sql_text import first_column, parsed
from correlator.stored_ids import StoredIds
from correlator.stored_spans import WORK_COLUMNS
from correlator.tick_scope import LINKS_BOTH_WAYS, scope_spans
from correlator.trace_reload import cross_links, reload_traces

log = logging.getLogger(__name__)

HELD_TRACES = (
    "CREATE OR REPLACE TEMP TABLE held_traces AS SELECT DISTINCT trace_id, workflow_id "
    "FROM work_spans"
)


@dataclass(frozen=True)
class Arrivals:
    count: int
    newest: dt.datetime | None
    links_traces: bool  # some new span links to another trace


class SpanMemory:
    def __init__(
        self, *, on_reload: Callable[[duckdb.DuckDBPyConnection, list[str]], None]
    ) -> None:
        # told the traces brought back from the store, once they are held (the bus
        # signals about them an eviction let go come back with them)
        self._on_reload = on_reload
        # spans held that arrived without a workflow id (they may inherit one through
        # span links): while there are none, nothing need be inherited
        self.lacking_ids = 0
        # whether cross_links may hold a row: while it holds none (our spans never
        # link across traces), the scope follows no links
        self.linked = True
        # the traces this tick brought back from the store: re-judged with the new
        # spans' (one sharing a workflow id with them need not be linked to them)
        self._reloaded: list[str] = []
        # what the store has held (and awaits), as hashes (stored_ids.py)
        self._stored = StoredIds()

    def hold(self, con: duckdb.DuckDBPyConnection) -> None:
        """Hold the spans ``correlated_spans`` reads (a full pass points it at the
        ones that may still change), as stored: a span without a workflow id keeps
        none, and inherits one again in each tick (its producer's span may arrive
        later, and change which it is)."""
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE work_spans AS SELECT {WORK_COLUMNS} "
            "FROM correlated_spans"
        )
        con.execute(HELD_TRACES)
        con.execute(f"CREATE OR REPLACE TEMP TABLE cross_links AS {cross_links('work_spans')}")
        (self.lacking_ids,) = con.execute(
            "SELECT count(*) FROM work_spans WHERE workflow_id IS NULL"
        ).fetchone()
        self._count_links(con)

    def remember_stored(self, con: duckdb.DuckDBPyConnection, *, spans: str, older: bool) -> None:
        """Remember the traces and workflows a full pass found in the store (``spans``,
        and ``older_traces`` when ``older``: see StoredIds.remember): a span that
        continues one of them after memory let it go brings it back (``admit``).
        Ticks add the ones they see."""
        self._stored.remember(con, spans=spans, older=older)

    def forget_stored_before(self, at: dt.datetime) -> None:
        """Let go of the traces and workflows first seen before ``at``'s hour: the
        store no longer holds their spans."""
        self._stored.forget_before(at)

    def take_in(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        segments: list[str],
        compacted: list[str],
        since: dt.datetime,
    ) -> Arrivals:
        """Make ``new_spans`` the spans of new ``segments``, and those of new
        ``compacted`` segments received after ``since``, that memory does not hold
        yet, each once. A new segment is read whole, whatever its clock says: a
        second collector whose clock runs behind stamps spans earlier than those
        already read. A compacted one holds the rows of segments read before it,
        most of them long ago."""
        self._reloaded = []
        self._stored.settle()
        con.execute(
            parsed(f"""
            CREATE OR REPLACE TEMP TABLE new_spans AS
            WITH arrived AS (
                SELECT {WORK_COLUMNS}
                FROM read_parquet($segments, union_by_name = true, hive_partitioning = false)
                UNION ALL
                SELECT {WORK_COLUMNS}
                FROM read_parquet($compacted, union_by_name = true, hive_partitioning = false)
                WHERE received_at > $since
            )
            SELECT a.* FROM arrived AS a
            ANTI JOIN (
                SELECT trace_id, span_id FROM work_spans
                WHERE trace_id IN (SELECT trace_id FROM arrived)
            ) AS w USING (trace_id, span_id)
            """),
            {"since": since, "segments": segments, "compacted": compacted},
        )
        (count, distinct, newest, lacking_ids, linking) = con.execute(
            parsed("""
            SELECT count(*), count(DISTINCT (trace_id, span_id)), max(received_at),
                   count(*) FILTER (WHERE workflow_id IS NULL),
                   count(*) FILTER (WHERE link_trace_id <> trace_id)
            FROM new_spans
            """)
        ).fetchone()
        # a span stored twice since the last tick: keep its first (copies are rare,
        # and a window over every new span cost ~2 ms a tick)
        if distinct < count:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE new_spans AS SELECT * FROM new_spans QUALIFY "
                "row_number() OVER (PARTITION BY trace_id, span_id ORDER BY received_at) = 1"
            )
        self.lacking_ids += lacking_ids
        return Arrivals(count=distinct, newest=newest, links_traces=linking > 0)

    def admit(self, con: duckdb.DuckDBPyConnection, arrivals: Arrivals, *, at: dt.datetime) -> None:
        """Hold ``new_spans`` (arrived by ``at``), with the traces memory let go that
        they continue."""
        # each new (trace, workflow id) pair, with whether memory holds the trace, and
        # the workflow (looked up among the few named, so that no hash table of every
        # held pair is built), and whether a held span links to the trace
        arrived = con.execute(
            parsed("""
            WITH fresh AS (SELECT DISTINCT trace_id, workflow_id FROM new_spans)
            SELECT
                trace_id,
                hash(trace_id),
                hash(workflow_id),
                trace_id IN (
                    SELECT trace_id FROM held_traces
                    WHERE trace_id IN (SELECT trace_id FROM fresh)
                ),
                workflow_id IS NULL OR workflow_id IN (
                    SELECT workflow_id FROM held_traces
                    WHERE workflow_id IN (SELECT workflow_id FROM fresh)
                ),
                trace_id IN (
                    SELECT link_trace_id FROM cross_links
                    WHERE link_trace_id IN (SELECT trace_id FROM fresh)
                )
            FROM fresh
            """)
        ).fetchall()
        unheld = [
            # stored spans link to the trace, and memory let them go (held, they would
            # bring it into their workflow: scope)
            (t, tk, wk, wf_held, not linked and tk in self._stored.awaited_traces)
            for t, tk, wk, t_held, wf_held, linked in arrived
            if not t_held
        ]
        self._reload_evicted_traces(con, unheld=unheld, follow_links=arrivals.links_traces)
        if arrivals.links_traces:
            self._stored.await_links(con, at=at)
        # undone if the tick rolls back
        self._stored.record([(tk, wk, wf_held) for _, tk, wk, _, wf_held, _ in arrived], at=at)
        con.execute("INSERT INTO work_spans SELECT * FROM new_spans")
        # pairs held already come again: a lookup table need not be exact, and the
        # next eviction makes it so
        con.execute("INSERT INTO held_traces SELECT DISTINCT trace_id, workflow_id FROM new_spans")
        if arrivals.links_traces:
            con.execute(f"INSERT INTO cross_links {cross_links('new_spans')}")
            self.linked = True

    def committed(self) -> None:
        """The tick that added to what the store holds committed: a later one that
        fails takes back only its own."""
        self._stored.committed()

    def rolled_back(self) -> None:
        """The tick that added to what the store holds was rolled back: its spans
        come again, and are new again."""
        self._stored.rolled_back()

    def scope(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        turn: int,
        now: dt.datetime,
        silence_factor: float,
    ) -> None:
        """Make ``scope_spans`` the spans to re-judge (tick_scope.py)."""
        scope_spans(
            con,
            linked=self.linked,
            reloaded=self._reloaded,
            turn=turn,
            now=now,
            silence_factor=silence_factor,
        )

    def evict(self, con: duckdb.DuckDBPyConnection, *, horizon: dt.datetime) -> None:
        """Forget the traces quiet since ``horizon`` that ``open_traces`` does not name,
        unless their workflow is still held for another of its traces: one that
        shares its workflow id, or that span links join it to, however many hops away
        (a workflow is held whole: see ``scope``; evicted in pieces, its last trace
        would be judged alone)."""
        con.execute(
            f"""
            DELETE FROM work_spans WHERE trace_id NOT IN (
                WITH RECURSIVE busy AS (
                    SELECT trace_id FROM work_spans GROUP BY trace_id
                    HAVING max(received_at) >= $horizon
                    UNION SELECT trace_id FROM open_traces
                ),
                {LINKS_BOTH_WAYS},
                kept(trace_id) AS (
                    SELECT trace_id FROM busy
                    UNION
                    SELECT trace_id FROM held_traces WHERE workflow_id IN (
                        SELECT workflow_id FROM held_traces
                        WHERE trace_id IN (SELECT trace_id FROM busy)
                    )
                    UNION
                    SELECT l.other FROM kept AS k JOIN links AS l USING (trace_id)
                )
                SELECT trace_id FROM kept
            )
            """,
            {"horizon": horizon},
        )
        con.execute(HELD_TRACES)
        con.execute(
            "DELETE FROM cross_links WHERE trace_id NOT IN (SELECT trace_id FROM held_traces)"
        )
        self._count_links(con)
        (self.lacking_ids,) = con.execute(
            "SELECT count(*) FROM work_spans WHERE workflow_id IS NULL"
        ).fetchone()

    def _reload_evicted_traces(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        unheld: list[tuple[str, int, int, bool, bool]],
        follow_links: bool,
    ) -> None:
        """Bring back from the store the traces that new spans continue but memory no
        longer holds (``unheld`` ones the store held before: a redelivered duplicate,
        a stalled workflow resuming, a batch stored again after its trace left
        memory, whose first publish alone would look consumed by nobody), the stored
        traces of the workflows new traces continue (a trace context broken on the
        way, a person resuming a run long quiet), and the traces span links lead
        back to, directly or through held traces (a consumer of another
        instrumentation, in a trace of its own, whose producer's trace left memory),
        as far as inherited_workflows follows them, or that link to new traces (such
        consumers, let go before their producer's span came). With each trace come
        the rest of its workflow: the traces it links to, those that link to it, and
        those that share its workflow id. ``unheld``: (trace id, its hash, its
        workflow's hash, whether memory holds that workflow, whether stored spans
        memory let go link to it) of each new trace memory does not hold.
        ``follow_links``: some new span links to another trace (ours never do: the
        walk costs a few ms a tick)."""
        # the store is searched only for what it held (a hash collision costs a
        # search that finds nothing)
        held_before = {t for t, key, _, _, _ in unheld if key in self._stored.traces}
        wanted = sorted(held_before)
        continuing = sorted(  # new traces of workflows memory let go
            {
                t
                for t, _, key, held, awaited in unheld
                if awaited or (not held and key in self._stored.workflows)
            }
        )
        if follow_links:
            wanted += first_column(
                con,
                parsed("""
                -- the traces new spans link to, and those held ones link to in turn
                WITH RECURSIVE linked(trace_id) AS (
                    SELECT link_trace_id FROM new_spans WHERE link_trace_id <> trace_id
                    UNION
                    SELECT c.link_trace_id
                    FROM linked AS l JOIN cross_links AS c ON c.trace_id = l.trace_id
                )
                SELECT trace_id FROM linked
                WHERE trace_id NOT IN (SELECT trace_id FROM new_spans)
                    AND trace_id NOT IN (SELECT trace_id FROM work_spans)
                """),
            )
            wanted = sorted(set(wanted))
        reloaded = reload_traces(con, wanted=wanted, continuing=continuing, held_before=held_before)
        self._reloaded = reloaded
        if reloaded:
            self._on_reload(con, reloaded)
            con.execute(
                "INSERT INTO held_traces SELECT DISTINCT trace_id, workflow_id FROM work_spans "
                "WHERE trace_id IN (SELECT unnest($traces))",
                {"traces": reloaded},
            )
            self._count_links(con)  # a trace the store did not hold brought nothing
            (self.lacking_ids,) = con.execute(  # memory once new_spans join it
                "SELECT (SELECT count(*) FROM work_spans WHERE workflow_id IS NULL) "
                "+ (SELECT count(*) FROM new_spans WHERE workflow_id IS NULL)"
            ).fetchone()
            log.debug("reloaded %d traces from the store for late spans", len(reloaded))

    def _count_links(self, con: duckdb.DuckDBPyConnection) -> None:
        (self.linked,) = con.execute("SELECT count(*) > 0 FROM cross_links").fetchone()
