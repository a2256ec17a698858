"""How a pass runs its SQL on the correlator's connection: which spans the views
read (``correlated_spans``), which views are computed once into tables that shadow
them, and how the connection is tuned for a full pass or a tick.

One set of SQL serves both kinds of pass: a cold pass points ``correlated_spans`` at
every stored span, a tick at the spans it re-judges (``scope_spans``). The views
every detection statement reads are materialized once per pass, in dependency
order, as temp tables of the same name.
"""

from __future__ import annotations

import logging
import time

import duckdb

from correlator.sql_text import parsed

log = logging.getLogger(__name__)

# Views every detection statement reads, computed once per pass: each is stored as a
# temp table of the same name, which shadows the view for the pass's statements.
MATERIALIZED = (
    "inherited_workflows",
    "workflow_spans",
    "publish_spans",
    "retried_messages",
    "delivery_spans",
    "dead_letters",
    "deliveries_seen",
    "transitions",
    "workflow_first_events",
)
# a full pass reads every span once per statement: a copy of workflow_spans (every
# span) would cost more than the reads
FULL_PASS_MATERIALIZED = tuple(name for name in MATERIALIZED if name != "workflow_spans")
# A tick's spans are a few thousand: workflow_spans is copied, so that the ten
# statements that read it do not each plan it again. Views only one of its
# statements reads are computed inline (learning, which also reads them, waits for a
# full pass): that costs less than another table.
TICK_MATERIALIZED = tuple(
    name for name in MATERIALIZED if name not in ("workflow_first_events", "dead_letters")
)

# optimizers a pass runs without (PassViews.enter)
FULL_PASS_UNOPTIMIZED = ("build_side_probe_side",)
TICK_UNOPTIMIZED = (
    *FULL_PASS_UNOPTIMIZED,
    "join_order",
    "statistics_propagation",
    "common_subplan",
    "expression_rewriter",
)


class PassViews:
    """The views' inputs on one connection, and what the last pass left there."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        (self._db,) = con.execute("SELECT current_database()").fetchone()
        (self._all_threads,) = con.execute("SELECT current_setting('threads')").fetchone()
        self._mode: str | None = None  # "full" or "tick": see enter
        # whether inherited_workflows is the empty table that serves while every span
        # names its workflow, and which materialized views a table may shadow
        self._inherits_nothing = False
        self._shadowed: set[str] = set(MATERIALIZED)
        self._pointed_at: str | None = None  # what correlated_spans reads
        self.enter("full")  # also for what other callers run on con (learning a model)

    def enter(self, mode: str) -> None:
        """Set the connection up for a full pass (every span) or a tick (a few
        thousand spans in ~40 statements). Switching costs ~8 ms (DuckDB stops or
        starts its workers), so it happens only when the kind of pass changes.

        Both: the statements join a large side (spans) to a smaller one (publishes,
        messages) with the smaller one on the right, which is the side DuckDB builds
        its hash table from. Its cardinality estimate for a filtered side is often far
        too low, and it then builds on ~700k wide consumer spans instead: on 1M spans
        that cost ~0.4 s of a cold pass (build_side_probe_side stays off).

        A tick runs on one thread, which spares each statement per-thread hash tables
        (~15% of a tick), and plans each statement with fewer optimizers: planning is
        half of a tick, and on a few thousand rows join ordering, statistics
        propagation, shared-subplan detection and expression rewriting cost more than
        they save (~15%).
        """
        if mode == self._mode:
            return
        threads, disabled = (
            (self._all_threads, FULL_PASS_UNOPTIMIZED) if mode == "full" else (1, TICK_UNOPTIMIZED)
        )
        self.con.execute(f"SET threads = {int(threads)}")
        self.con.execute(f"SET disabled_optimizers = '{','.join(disabled)}'")
        self._mode = mode

    def point_at(
        self,
        table: str,
        *,
        materialized: tuple[str, ...] = FULL_PASS_MATERIALIZED,
        inherits: bool = True,
    ) -> None:
        """Judge the spans of ``table``: the views read them through correlated_spans,
        and the ``materialized`` ones are computed once, into tables that shadow them.
        Unless some span of ``table`` may lack a workflow id (``inherits``),
        inherited_workflows is not computed: workflow_spans reads it only for such
        spans, so an empty table serves."""
        con = self.con
        # a table left from a pass that materialized more would shadow its view
        for name in MATERIALIZED:
            if name not in materialized and name in self._shadowed:
                con.execute(f"DROP TABLE IF EXISTS temp.main.{name}")
                self._shadowed.discard(name)
        if table != self._pointed_at:  # a tick points it at scope_spans, as the last one did
            con.execute(f"CREATE OR REPLACE TEMP VIEW correlated_spans AS SELECT * FROM {table}")
            self._pointed_at = table
        # in dependency order, so each reads its inputs of this pass, never of the last
        for name in materialized:
            self._shadowed.add(name)  # before it exists: a failure leaves it listed
            if name == "inherited_workflows" and not inherits:
                if not self._inherits_nothing:
                    con.execute(
                        "CREATE OR REPLACE TEMP TABLE inherited_workflows "
                        "(trace_id VARCHAR, workflow_id VARCHAR)"
                    )
                    self._inherits_nothing = True
                continue
            if name == "inherited_workflows":
                self._inherits_nothing = False
            started = time.perf_counter()
            con.execute(
                parsed(
                    f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {self._db}.main.{name}"
                )
            )
            log.debug("materialized %s in %.3fs", name, time.perf_counter() - started)

    def repointed(self) -> None:
        """Something else re-pointed correlated_spans (``StoredSpans.keep``)."""
        self._pointed_at = None

    def rolled_back(self) -> None:
        """A transaction that changed these tables was rolled back: assume nothing."""
        self._inherits_nothing = False
        self._pointed_at = None
        self._shadowed = set(MATERIALIZED)
