"""Learning the model again while a watcher runs, beside its ticks, not inside one.

Learning reads every stored span: ~1 s a million spans. A store a watcher has kept
for a day at 1k spans/s holds ~86M, and a refresh inline in a tick held every tick
(and every alert) back for that long, every ``model_refresh_s``. ``ModelRefresh``
learns on a thread of its own, over a DuckDB database of its own (settings such as
``threads`` are per database: a tick's one thread and fewer optimizers would not
do for a full read), on one thread, so the ticks keep the other core. A tick takes
the new model in once it is ready (``take``).

On a store so large that learning takes more than a tenth of ``model_refresh_s``
(~30 s at the default 5 min: some 30M spans), refreshes come further apart, so that
learning never takes more than ``MAX_CORE_SHARE`` of the core it runs on: the model
changes slowly, and a store's history is not worth a core.
"""

from __future__ import annotations

import logging
import threading
import time

import duckdb

from correlator.connection import full_pass_connection
from correlator.declared_choreography import Choreography
from correlator.findings import remembered_since
from correlator.memory_budget import MemoryBudgetError, within
from correlator.model import ChoreographyModel, learn_model
from correlator.pass_views import PassViews
from correlator.stored_spans import StoredSpans
from correlator.thresholds import Thresholds
from store import StoreLayout
from store.rereading import file_changed_under

# the share of its core learning may take: the pause after a refresh is at least
# (1 / MAX_CORE_SHARE - 1) times as long as the refresh took
MAX_CORE_SHARE = 0.1

log = logging.getLogger(__name__)


def learn_from_store(
    con: duckdb.DuckDBPyConnection,
    *,
    layout: StoreLayout,
    segments: frozenset[str],
    thresholds: Thresholds,
    declared: Choreography | None,
) -> ChoreographyModel:
    """The model learned from every span of ``segments``, on ``con``
    (``full_pass_connection``)."""
    views = PassViews(con)
    stored = StoredSpans(layout=layout)
    stored.read(con, segments)
    stored.point_views_at_all(views)
    return learn_here(con, layout=layout, thresholds=thresholds, declared=declared)


def learn_here(
    con: duckdb.DuckDBPyConnection,
    *,
    layout: StoreLayout,
    thresholds: Thresholds,
    declared: Choreography | None,
) -> ChoreographyModel:
    """The model learned from the spans ``con``'s views judge, keeping what the last
    model written said of when each consumer group came (``remembered_since``)."""
    return learn_model(
        con, thresholds=thresholds, declared=declared, remembered_since=remembered_since(layout)
    )


class ModelRefresh:
    """At most one model being learned in the background, and the last one learned."""

    def __init__(
        self,
        *,
        layout: StoreLayout,
        thresholds: Thresholds,
        declared: Choreography | None,
        every_s: float,
        memory_limit: int,
    ) -> None:
        self.layout = layout
        self.memory_limit = memory_limit
        self.thresholds = thresholds
        self.declared = declared
        self.every_s = every_s
        self._started_at = time.monotonic()  # a pass learned one just now
        self.pause_s = every_s  # from the end of one refresh to the start of the next
        self._thread: threading.Thread | None = None
        self._learned: ChoreographyModel | None = None
        self._con: duckdb.DuckDBPyConnection | None = None  # the one learning
        self._closing = False
        self._lock = threading.Lock()

    def learned_now(self) -> None:
        """A pass learned the model itself: the next refresh is ``every_s`` away."""
        self._started_at = time.monotonic()

    def start_if_due(self, *, segments: frozenset[str]) -> None:
        """Begin learning from ``segments`` if ``every_s`` has passed since the last
        model was learned and none is being learned."""
        if self._closing or self._thread is not None:
            return
        if time.monotonic() - self._started_at < self.pause_s:
            return
        self._started_at = time.monotonic()
        self._thread = threading.Thread(
            target=self._learn, args=(segments,), name="choreoscope-model-refresh", daemon=True
        )
        self._thread.start()

    def take(self) -> ChoreographyModel | None:
        """The model learned since the last call, if one was."""
        with self._lock:
            model, self._learned = self._learned, None
        if model is not None and self._thread is not None:
            self._thread.join()  # it has handed its model over: it is ending
            self._thread = None
        elif self._thread is not None and not self._thread.is_alive():
            self._thread = None  # it failed, and said why
        return model

    def wait(self) -> None:
        """Wait until the model being learned, if any, is ready (or failed)."""
        if self._thread is not None:
            self._thread.join()

    def close(self) -> None:
        """Stop learning: a model half learned is let go (its thread reads the store).
        DuckDB forgets an interrupt that comes between two statements, so it is sent
        until the thread ends."""
        with self._lock:
            self._closing = True
        thread = self._thread
        while thread is not None and thread.is_alive():
            with self._lock:
                if self._con is not None:
                    self._con.interrupt()
            thread.join(0.05)
        self._thread = None

    def _learn(self, segments: frozenset[str]) -> None:
        started = time.monotonic()
        try:
            con, spill = full_pass_connection(self.layout, memory_limit=self.memory_limit)
        except Exception:
            log.exception("could not open the store to learn the model again")
            return
        try:
            with self._lock:
                if self._closing:
                    return
                self._con = con
            con.execute("SET threads = 1")  # the other core is the ticks'
            with within(limit=self.memory_limit, spill=spill.path):
                model = learn_from_store(
                    con,
                    layout=self.layout,
                    segments=segments,
                    thresholds=self.thresholds,
                    declared=self.declared,
                )
        except Exception as e:  # a thread's failure would otherwise go unseen
            if self._closing:  # interrupted by close
                return
            if isinstance(e, MemoryBudgetError):
                log.error(
                    "learning the model again failed: %s. Detection keeps the model it "
                    "has, and tries again in %.0f s",
                    e, self.every_s,
                )  # fmt: skip
                return
            if isinstance(e, duckdb.Error) and file_changed_under(e):
                # compaction or retention replaced a segment meanwhile
                log.warning(
                    "the store changed while the model was learned again (%s); learning "
                    "it again in %.0f s",
                    e, self.every_s,
                )  # fmt: skip
                return
            log.exception(
                "learning the model again failed; detection keeps the model it has, "
                "and tries again in %.0f s",
                self.every_s,
            )
            return
        finally:
            with self._lock:
                self._con = None
            con.close()
            spill.remove()
            took = time.monotonic() - started
            self.pause_s = max(self.every_s, took * (1 / MAX_CORE_SHARE - 1))
            self._started_at = time.monotonic()  # the next one is pause_s after this one
        with self._lock:
            self._learned = model
        if self.pause_s > self.every_s:
            log.info(
                "learned the model again in %.1f s; on a store this large, the next in "
                "%.0f s (learning takes at most %g%% of a core)",
                took, self.pause_s, 100 * MAX_CORE_SHARE,
            )  # fmt: skip
        else:
            log.info("learned the model again in %.1f s", took)
