"""What a watcher knows the store holds, without reading it: 64-bit hashes
(seen_keys.py) of every trace and workflow id the store has held, and of the traces
its spans link to that it did not hold, each with the hour it came in.

A span that continues one of them after memory let it go brings the rest back from
the store (``SpanMemory.admit``, trace_reload.py). A cold pass gives them all
(``remember``); each tick adds those its new spans bring (``record``,
``await_links``), and takes them out again if it rolls back. Held in Python: a tick
looks up a few hundred keys, which costs nothing there and a join's hash table in
DuckDB.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from correlator.seen_keys import SeenKeys
from correlator.sql_text import parsed

# of the traces ``linked`` names, those older segments hold (looked up among the
# few linked, not by a hash table of every older trace)
OLDER_HOLDS = """
    AND hash(trace_id) NOT IN (
        SELECT trace_key FROM older_traces
        WHERE trace_key IN (SELECT hash(trace_id) FROM linked)
    )"""


class StoredIds:
    def __init__(self) -> None:
        self.traces = SeenKeys()
        self.workflows = SeenKeys()
        # the traces stored spans link to that the store did not hold then (a consumer
        # of another instrumentation, in a trace of its own, whose producer's span has
        # not arrived): that trace, when it comes, continues them
        self.awaited_traces = SeenKeys()
        # the keys this tick added (a tick rolled back takes them out again)
        self._added: list[tuple[SeenKeys, int]] = []

    def remember(self, con: duckdb.DuckDBPyConnection, *, spans: str, older: bool) -> None:
        """Remember every trace and workflow a full pass found in the store (``spans``),
        and the traces those spans link to that it does not hold (as few as the
        consumers still waiting for their producer's span). ``older``: the pass was
        resumed (resume.py), and ``older_traces`` holds the traces of the segments
        it did not judge again."""
        hour = "CAST({} // 3600000000 AS INTEGER) AS hour"
        older_traces = older_workflows = older_awaited = ""
        linking = 0
        if older:
            older_traces = f"""
                UNION ALL SELECT trace_key, {hour.format("epoch_us(first_received_at)")}
                FROM older_traces"""
            older_workflows = f"""
                UNION ALL SELECT workflow_key, {hour.format("epoch_us(max(last_received_at))")}
                FROM older_traces WHERE workflow_key IS NOT NULL GROUP BY workflow_key"""
            (linking,) = con.execute(
                "SELECT count(*) FROM older_traces WHERE links IS NOT NULL"
            ).fetchone()
        if linking:  # spans of other instrumentations (ours never link to another trace)
            older_awaited = f"""
                UNION ALL SELECT key, {hour.format("first_us")} FROM (
                    SELECT unnest(links) AS key, epoch_us(first_received_at) AS first_us
                    FROM older_traces WHERE links IS NOT NULL
                )
                WHERE key NOT IN (SELECT trace_key FROM older_traces)
                    AND key NOT IN (SELECT hash(trace_id) FROM {spans})"""
        for seen, query in (
            (
                self.traces,
                f"SELECT hash(trace_id) AS key, {hour.format('min(epoch_us(received_at))')} "
                f"FROM {spans} GROUP BY trace_id {older_traces}",
            ),
            (
                self.awaited_traces,
                f"""
                WITH linked AS (
                    SELECT link_trace_id AS trace_id, min(epoch_us(received_at)) AS first_us
                    FROM {spans} WHERE link_trace_id <> trace_id GROUP BY link_trace_id
                )
                SELECT hash(trace_id) AS key, {hour.format("first_us")} FROM linked
                WHERE trace_id NOT IN (  -- only the linked traces are looked up
                    SELECT trace_id FROM {spans}
                    WHERE trace_id IN (SELECT trace_id FROM linked)
                )
                {OLDER_HOLDS if older else ""}
                {older_awaited}
                """,
            ),
            (
                self.workflows,
                f"SELECT hash(workflow_id) AS key, {hour.format('epoch_us(last_activity_at)')} "
                f"FROM d_workflows {older_workflows}",
            ),
        ):
            found = con.execute(query).fetchnumpy()
            seen.load(found["key"], found["hour"])

    def forget_before(self, at: dt.datetime) -> None:
        """Let go of the keys first seen before ``at``'s hour: the store no longer
        holds their spans."""
        for seen in (self.traces, self.workflows, self.awaited_traces):
            seen.forget_before(at)

    def settle(self) -> None:
        """A tick begins: what the last one added stays (seen_keys.py merges it)."""
        self._added = []  # nothing of this tick yet: a merge now is never undone
        for seen in (self.traces, self.workflows, self.awaited_traces):
            seen.settle()

    def record(self, arrived: list[tuple[int, int, bool]], *, at: dt.datetime) -> None:
        """What the store holds from now on: of each new trace, ``(its hash, its
        workflow's hash, whether memory held that workflow)`` (a workflow id may first
        come on a held trace: an app's request span names none)."""
        for trace_key, workflow_key, workflow_held in arrived:
            self._add(self.traces, trace_key, at=at)
            if not workflow_held:  # recorded then
                self._add(self.workflows, workflow_key, at=at)

    def await_links(self, con: duckdb.DuckDBPyConnection, *, at: dt.datetime) -> None:
        """Remember the traces ``new_spans`` link to that neither memory nor they hold:
        when one comes, the store's spans linking to it come back with it, if memory
        let them go."""
        awaited = con.execute(
            parsed("""
            SELECT DISTINCT hash(link_trace_id) FROM new_spans
            WHERE link_trace_id <> trace_id
                AND link_trace_id NOT IN (SELECT trace_id FROM new_spans)
                AND link_trace_id NOT IN (
                    SELECT trace_id FROM held_traces
                    WHERE trace_id IN (SELECT link_trace_id FROM new_spans)
                )
            """)
        ).fetchall()
        for (key,) in awaited:
            self._add(self.awaited_traces, key, at=at)

    def committed(self) -> None:
        """What this tick added stays."""
        self._added = []

    def rolled_back(self) -> None:
        """The tick that added keys was rolled back: its spans come again, and are
        new again."""
        for seen, key in self._added:
            seen.discard(key)
        self._added = []

    def _add(self, seen: SeenKeys, key: int, *, at: dt.datetime) -> None:
        if seen.add(key, at=at):
            self._added.append((seen, key))
