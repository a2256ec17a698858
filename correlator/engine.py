"""The correlator's passes: one cold pass over all history, then incremental ticks.

A cold pass reads every span once (``stored_spans``; after an earlier pass, only
those of the workflows active since shortly before it: resume.py), learns the
model, judges every workflow and keeps in memory (``span_memory``) only the spans
of workflows that may still change: open ones (not completed, active within
``keep_s``) and recent ones (``recent_s``). Each tick reads only the segments
written since the last one (of a segment compaction wrote, only the rows received
lately: it holds rows read before), and re-judges only the workflows those spans
touch plus the open ones, on one thread (a tick is a few thousand spans in some
thirty statements: per-thread hash tables cost more than they save). Heartbeats
and bus events are read the same way (``signal_memory``). Findings go to
``<data>/findings/`` after every pass.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from pathlib import Path
from typing import Any

from correlator.connection import full_pass_connection
from correlator.declared_choreography import Choreography
from correlator.detection import Detection, detect
from correlator.findings import (
    FindingsPruner,
    ensure_findings,
    findings_folder,
    findings_lost,
    remove_abandoned_writes,
    write_findings,
)
from correlator.ledger import AnomalyLedger
from correlator.memory_budget import MemoryBudget, within
from correlator.model import ChoreographyModel, install_model
from correlator.model_refresh import ModelRefresh, learn_from_store, learn_here
from correlator.pass_views import TICK_MATERIALIZED, PassViews
from correlator.reclaim import RECLAIMED, reclaim_deleted
from correlator.resume import judged_with, resume_point
from correlator.retirement import retention_horizon, retire_expired
from correlator.signal_memory import SignalMemory
from correlator.span_memory import SpanMemory
from correlator.sql_text import parsed, statement
from correlator.stored_spans import StoredSpans
from correlator.thresholds import Thresholds
from correlator.verdicts import Verdicts
from store import StoreLayout
from store.layout import COMPACTED_PREFIX

log = logging.getLogger(__name__)


class Correlator:
    """Keeps findings fresh for one store. Passes and writes take turns (a lock)."""

    def __init__(
        self,
        *,
        data_dir: str | Path,
        thresholds: Thresholds | None = None,
        choreography: Choreography | None = None,
        keep_s: float = 900.0,
        recent_s: float = 120.0,
        evict_every_ticks: int = 30,
        model_refresh_s: float = 300.0,
        ingest_slack_s: float = 10.0,
        status_rewrite_s: float = 30.0,
        memory: MemoryBudget | None = None,
    ) -> None:
        self.layout = StoreLayout.at(data_dir)
        self.layout.check_version()
        ensure_findings(self.layout)
        self._findings_folder = findings_folder(self.layout)
        self._pruner = FindingsPruner(self.layout)
        for path in remove_abandoned_writes(self.layout):
            log.info("removed %s, left by a write that was killed", path)
        self.thresholds = thresholds or Thresholds()
        self.choreography = choreography
        self.keep_s = keep_s
        self.recent_s = recent_s
        self.evict_every_ticks = evict_every_ticks
        self.ingest_slack_s = ingest_slack_s
        self.status_rewrite_s = status_rewrite_s
        self._pass = 0  # passes are numbered (verdicts.py)
        # what the verdicts depend on besides the spans: a cold pass resumes only
        # from a pass that judged with the same (resume.py)
        self.judged_with = judged_with(
            thresholds=self.thresholds, choreography=choreography, keep_s=keep_s
        )
        self.verdicts = Verdicts(layout=self.layout, rewrite_s=status_rewrite_s)
        self.memory_budget = memory or MemoryBudget.default()
        # eviction checkpoints (_evict): the automatic one is off
        self.con, self._spill = full_pass_connection(
            self.layout, memory_limit=self.memory_budget.passes
        )
        self.views = PassViews(self.con)
        self.ledger = AnomalyLedger.load(self.layout, rewrite_s=status_rewrite_s)
        # heartbeats older than a pass could need (a wait's baseline of dropped spans
        # predates the wait) are forgotten
        self.signals = SignalMemory(layout=self.layout, keep_s=max(3600.0, 2 * keep_s))
        self.stored = StoredSpans(layout=self.layout)
        self.memory = SpanMemory(on_reload=self.signals.bring_back)
        self.model = ChoreographyModel()
        self.watermark: dt.datetime | None = None
        # the model learned again every model_refresh_s, beside the ticks
        self.refresh = ModelRefresh(
            layout=self.layout,
            thresholds=self.thresholds,
            declared=choreography,
            every_s=model_refresh_s,
            memory_limit=self.memory_budget.learning,
        )
        self._ticks = 0
        # span segments read by earlier passes: segments are immutable (written under
        # a temp name, then renamed), so a tick reads only the ones new since
        self._segments_read: frozenset[str] = frozenset()
        self._lock = threading.RLock()  # passes run in worker threads, one at a time

    # --- passes ------------------------------------------------------------------

    def cold_pass(self, *, now: dt.datetime, hold: bool = True) -> list[dict[str, Any]]:
        """Judge every workflow in the store; return the anomalies new to the ledger.
        Unless ``hold`` is false (no tick follows: ``correlate --once``), keep in
        memory the spans ticks will need. Raises ``MemoryBudgetError`` if it needs
        more memory than its budget, even spilling."""
        with self._lock, self.within_budget():
            self.views.enter("full")
            con = self.con
            segments = self.stored.segments()
            self.signals.load(con)
            resume = resume_point(
                con,
                layout=self.layout,
                now=now,
                fingerprint=self.judged_with,
                # a workflow stays open for keep_s after its last span, and a consumer
                # span waiting for its producer's for twice the orphan grace
                # (engine_sql/open_traces.sql)
                reach_s=max(self.keep_s, 2 * self.thresholds.orphan_grace_s) + self.recent_s,
            )
            since = resume.since if resume else None
            self.stored.read(
                con, segments, since=since, written_since=resume.written_since if resume else None
            )
            self.stored.point_views_at_all(self.views)
            resumed = resume is not None and self.stored.resumed
            newest = self.stored.newest(con)
            self.watermark = min(newest, now) if newest else now
            if not resumed:
                self._learn()
            elif hold:  # a watcher goes on with the model the last pass judged with
                self._install(resume.model)
            else:  # --once learns it again, from every span (only those read judge)
                self._learn_from_every_span(segments)
            detection = detect(con, now=now, thresholds=self.thresholds)
            judged = None  # all of them
            if resumed:
                judged = {
                    row["workflow_id"]
                    for row in detection.status.select(["workflow_id"]).to_pylist()
                }
            new = self._fold(detection, now=now, workflows=judged)
            self._pass += 1
            if hold:
                self._refresh_open(now=now, judged_all=True)  # before adopt() takes it
            self.verdicts.adopt(con, pass_number=self._pass)
            if resumed:
                carried = self.verdicts.carry_over(con, pass_number=self._pass)
                log.info(
                    "resumed from the last pass: judged the spans stored since %s again "
                    "(%d workflows); %d quiet since keep their verdicts",
                    since, len(judged or ()), carried,
                )  # fmt: skip
            retire_expired(
                con, ledger=self.ledger, verdicts=self.verdicts, segments=segments, now=now
            )
            if not hold:
                self.stored.release(con)
                self.watermark = None  # a tick would begin with a cold pass
                return new
            # keep in memory only what may still change: open workflows, recent traces
            recent_since = self.watermark - dt.timedelta(seconds=self.recent_s)
            self.memory.remember_stored(con, spans="stored_spans", older=resumed)
            self.stored.keep(con, recent_since=recent_since)
            self.views.repointed()  # keep re-pointed correlated_spans
            self.memory.hold(con)
            self.stored.release(con)
            self._segments_read = segments
            return new

    def tick(self, *, now: dt.datetime) -> list[dict[str, Any]]:
        """Fold in the spans that arrived since the last pass; return new anomalies."""
        if self.watermark is None:
            return self.cold_pass(now=now)
        with self._lock, self.within_budget():
            learned = self.refresh.take()  # a model learned beside the ticks, if ready
            if learned is not None:
                self._install(learned)
            # all or nothing: a tick that fails (a segment compacted away under us)
            # leaves memory and the watermark as they were, so the next one redoes it
            segments = self.stored.segments()
            lacking_ids = self.memory.lacking_ids
            signals_read = self.signals.mark()
            self.con.execute("BEGIN TRANSACTION")
            try:
                new, watermark = self._tick(now=now, segments=segments)
                self.con.execute("COMMIT")
                self.memory.committed()
            except BaseException:
                self.con.execute("ROLLBACK")
                # what Python keeps about memory goes back with it
                self.memory.lacking_ids = lacking_ids
                self.memory.linked = True
                self.memory.rolled_back()
                self.signals.rewind(signals_read)
                self.views.rolled_back()
                self.verdicts.rolled_back()
                raise
            self.watermark = watermark
            self._segments_read = segments
            return new

    def _tick(
        self, *, now: dt.datetime, segments: frozenset[str]
    ) -> tuple[list[dict[str, Any]], dt.datetime]:
        con = self.con
        self._ticks += 1
        self._pass += 1
        self.signals.fold_in(con)
        self.refresh.start_if_due(segments=segments)
        self.views.enter("tick")
        new_files = segments - self._segments_read
        compacted = {f for f in new_files if Path(f).name.startswith(COMPACTED_PREFIX)}
        # the schema seed (no rows) keeps every column there whatever the new segments hold
        arrivals = self.memory.take_in(
            con,
            segments=[self.stored.seed(), *sorted(new_files - compacted)],
            compacted=[self.stored.seed(), *sorted(compacted)],
            since=self.watermark - dt.timedelta(seconds=self.ingest_slack_s),
        )
        watermark = self.watermark
        if arrivals.count:
            # received_at is the collector's clock: never let one wrong clock push the
            # watermark past now, or the spans after it would be skipped
            watermark = min(max(watermark, arrivals.newest), now)
            self.memory.admit(con, arrivals, at=now)
        self.memory.scope(
            con, turn=self._ticks, now=now, silence_factor=self.thresholds.silence_factor
        )
        self.views.point_at(
            "scope_spans", materialized=TICK_MATERIALIZED, inherits=self.memory.lacking_ids > 0
        )
        detection = detect(con, now=now, thresholds=self.thresholds)
        judged = {
            row["workflow_id"] for row in detection.status.select(["workflow_id"]).to_pylist()
        }
        gone = self.verdicts.vanished(con) if self.memory.lacking_ids else set()
        new = self._fold(detection, now=now, workflows=judged | gone)
        if judged:
            self.verdicts.append(con, pass_number=self._pass)
        if gone:
            self.verdicts.retract(con, workflows=gone)
        self._refresh_open(now=now, judged_all=False)
        if self._ticks % self.evict_every_ticks == 0:
            self._evict(watermark=watermark)
        log.debug(
            "tick at %s: %d new spans, %d workflows judged, %d new anomalies",
            now, arrivals.count, len(judged), len(new),
        )  # fmt: skip
        return new, watermark

    # --- findings ----------------------------------------------------------------

    def write_findings(self) -> None:
        """Write the findings tables that changed since the last write (all of them when
        the folder was deleted, or a table of it lost), and sweep superseded ones."""
        with self._lock:
            if findings_lost(self.layout, folder=self._findings_folder):
                log.warning(
                    "the findings folder %s was deleted or a table of it removed: "
                    "writing every finding again", self.layout.findings,
                )  # fmt: skip
                self.layout.findings.mkdir(parents=True, exist_ok=True)
                self.ledger.rewrite_all()
                self.verdicts.rewrite_all()
                self.write_model()
                self._findings_folder = findings_folder(self.layout)
            if self.ledger.changed:
                self.ledger.write(self.layout)
            if self.verdicts.changed:
                self.verdicts.write(self.con, pass_number=self._pass)
            self._pruner.sweep_if_due()

    def write_model(self) -> None:
        for name, table in self.model.tables().items():
            write_findings(self.layout, name, table)

    def close(self) -> None:
        with self._lock:
            self.refresh.close()
            self.con.close()
            self._spill.remove()

    def within_budget(self) -> contextlib.AbstractContextManager[None]:
        """Turn running out of the passes' memory on ``con`` into a ``MemoryBudgetError``."""
        return within(limit=self.memory_budget.passes, spill=self._spill.path)

    # --- internals ---------------------------------------------------------------

    def _learn_from_every_span(self, segments: frozenset[str]) -> None:
        """Learn the model from every span of ``segments`` on a connection of its own:
        this one's views judge only the spans a resumed pass read."""
        limit = self.memory_budget.learning
        con, spill = full_pass_connection(self.layout, memory_limit=limit)
        try:
            with within(limit=limit, spill=spill.path):  # its own limit, not the passes'
                model = learn_from_store(
                    con,
                    layout=self.layout,
                    segments=segments,
                    thresholds=self.thresholds,
                    declared=self.choreography,
                )
        finally:
            con.close()
            spill.remove()
        self._install(model)
        self.refresh.learned_now()

    def _learn(self) -> None:
        self._install(
            learn_here(
                self.con, layout=self.layout, thresholds=self.thresholds, declared=self.choreography
            )
        )
        self.refresh.learned_now()

    def _install(self, model: ChoreographyModel) -> None:
        self.model = model
        install_model(self.con, model)
        self.write_model()

    def _fold(
        self, detection: Detection, *, now: dt.datetime, workflows: set[str] | None
    ) -> list[dict[str, Any]]:
        return self.ledger.merge(
            [*detection.findings, *detection.service_findings],
            now=now,
            workflows=workflows,
            services=True,
        )

    def _refresh_open(self, *, now: dt.datetime, judged_all: bool) -> None:
        """Traces of workflows that may still change (engine_sql/open_traces.sql): made
        anew from a cold pass's verdicts (``judged_all``); a tick replaces the rows of
        the workflows it judged and lets go of those whose time is up."""
        parameters = {
            "now": now,
            "keep": dt.timedelta(seconds=self.keep_s),
            "orphan_keep": dt.timedelta(seconds=2 * self.thresholds.orphan_grace_s),
            "retry_grace_s": self.thresholds.retry_grace_s,
        }
        query = statement("open_traces")
        if judged_all:
            self.con.execute(
                parsed(f"CREATE OR REPLACE TEMP TABLE open_traces AS {query}"), parameters
            )
            return
        self.con.execute(
            parsed("""
            DELETE FROM open_traces
            WHERE open_until <= CAST($now AS TIMESTAMPTZ)
                OR workflow_id IN (SELECT workflow_id FROM d_workflow_status)
            """),
            {"now": now},
        )
        self.con.execute(parsed(f"INSERT INTO open_traces {query}"), parameters)

    def _evict(self, *, watermark: dt.datetime) -> None:
        """Drop from memory the spans of traces that are closed and quiet, and the
        verdicts later ones superseded."""
        self.memory.evict(self.con, horizon=watermark - dt.timedelta(seconds=self.recent_s))
        self.verdicts.forget_superseded(self.con)
        self.signals.evict(self.con, now=watermark)
        horizon = retention_horizon(self._segments_read)
        if horizon is not None:  # what retention dropped is gone from the store
            self.memory.forget_stored_before(horizon)
        retire_expired(
            self.con, ledger=self.ledger, verdicts=self.verdicts,
            segments=self._segments_read, now=watermark,
        )  # fmt: skip
        reclaim_deleted(self.con, tables=RECLAIMED)
        self.con.execute("CHECKPOINT")  # the automatic one is off (see __init__)
