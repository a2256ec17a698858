"""Every anomaly ever found, keyed by its stable id: what is new, what resolved,
what was already alerted. Persisted under ``findings/``, so a restarted correlator
neither forgets nor re-alerts: ``anomalies`` holds every anomaly and is
rewritten at most every ``rewrite_s``; ``anomalies_recent`` holds the rows changed
since, rewritten at each write (each write a new generation: ``findings_files``).
Each row carries a ``revision`` that grows with every change, so readers (the
``anomalies`` view, ``load``) take each anomaly's highest, whichever table it is in
and whichever was written last.
A write costs the rows changed since the full file, not every anomaly ever found.

Anomalies are retired with their workflow's spans (``retire``): once retention
dropped them, the ``workflows`` view no longer lists the run, and a ledger that kept
its anomalies grew without limit (in memory and in the full file). The next full
rewrite leaves them out. The retired workflows are remembered as 64-bit hashes
(``anomalies_retired``, 12 bytes each instead of a row of ~1 kB): spans of
one that come back (a late copy, a batch stored again) are judged again, and what
they show is recorded as already told, never alerted a second time, for as long as
such a copy can still arrive (``forget_retired_before``). Service-level
anomalies (no workflow) are retired once resolved before the oldest hour the store
holds (``retire_service_findings``): a store run for a year no longer lists
year-old outages.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Iterable
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from correlator.explain import LATE_FACTS, anomaly_id, anomaly_row
from correlator.findings import (
    ANOMALIES,
    RETIRED_WORKFLOWS,
    anomalies_of_any_version,
    write_findings,
)
from correlator.findings_files import current_file
from correlator.seen_keys import SeenKeys
from store.layout import StoreLayout

FULL, RECENT, RETIRED = "anomalies", "anomalies_recent", "anomalies_retired"
# kinds that report a step as stuck: once the step completes late, its lateness is
# the same fault, not a `slow` one too (DESIGN.md: one anomaly per fault)
STUCK_KINDS = frozenset({"stalled", "hung", "dropped"})
# kinds that report a message as waiting on a consumer group: a later pass that sees
# the same wait otherwise (a hung handler's message dead-lettered) is the same fault
WAIT_KINDS = STUCK_KINDS | {"dead_lettered"}


class AnomalyLedger:
    def __init__(self, rows: Iterable[dict[str, Any]] = (), *, rewrite_s: float = 30.0) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        for row in rows:
            known = self._rows.get(row["anomaly_id"])
            if known is None or (row.get("revision") or 0) > (known.get("revision") or 0):
                self._rows[row["anomaly_id"]] = row
        # (workflow, step, consumer) of every anomaly of a stuck kind ever found
        self._stuck_steps = {_step(r) for r in self._rows.values() if r["kind"] in STUCK_KINDS}
        # (workflow, message, consumer) of each anomaly about a waiting message: the
        # wait it is about, which a later pass may see otherwise (see merge)
        self._waits = {
            _wait(r): r["anomaly_id"]
            for r in self._rows.values()
            if r["kind"] in WAIT_KINDS and r.get("message_id")
        }
        # the LATE_FACTS each anomaly that has them was last told with (filled from its
        # evidence when first needed), so that a tick re-explains only what changed
        self._told_facts: dict[str, tuple[Any, ...]] = {}
        # workflows whose anomalies were retired (hashes), and the ids of the rows the
        # full file still holds that its next rewrite leaves out
        self._retired = SeenKeys()
        self._retiring: set[str] = set()
        self._retired_written = True
        self.changed = False
        self.rewrite_s = rewrite_s
        # the full file as last written, when, and the rows changed since
        self._full: pa.Table | None = None
        self._full_written_at = 0.0
        self._since_full: set[str] = set()

    @classmethod
    def load(cls, layout: StoreLayout, *, rewrite_s: float = 30.0) -> AnomalyLedger:
        rows: list[dict[str, Any]] = []
        for name in (FULL, RECENT):
            path = current_file(layout, name)
            if path is not None:
                rows += anomalies_of_any_version(pq.read_table(path)).to_pylist()
        ledger = cls(rows, rewrite_s=rewrite_s)
        path = current_file(layout, RETIRED)
        if path is not None:
            retired = pq.read_table(path)
            ledger._retired.load(
                retired["workflow_key"].to_numpy(), retired["retired_hour"].to_numpy()
            )
        return ledger

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows.values())

    def merge(
        self,
        findings: Iterable[dict[str, Any]],
        *,
        now: dt.datetime,
        workflows: set[str] | None,
        services: bool,
    ) -> list[dict[str, Any]]:
        """Fold in what a pass found and return the anomalies seen for the first time.

        ``workflows`` is the set of workflows the pass evaluated (None: all of them);
        their anomalies the pass no longer finds are marked resolved. ``services``
        says the pass also judged service-level findings.
        """
        found: set[str] = set()
        new: list[dict[str, Any]] = []
        for finding in findings:
            if finding["kind"] == "slow" and _step(finding) in self._stuck_steps:
                continue  # the step was reported stuck: completing late is that fault
            key = anomaly_id(finding)
            known = self._rows.get(key)
            waiting = finding["kind"] in WAIT_KINDS and bool(finding.get("message_id"))
            if known is None and waiting:
                # one anomaly per fault: a message still waiting, seen otherwise now (its
                # consumer was down and is back with a backlog; lost, and then its
                # consumer went down too; its handler hung, and JetStream dead-lettered
                # it) stays the anomaly it was, as first told (the workflow's status says
                # how it stands now), and is not alerted again. Even once resolved: a
                # hung handler's message delivered again restarts the wait, and the
                # anomaly reads resolved until the redeliveries run out
                twin = self._rows.get(self._waits.get(_wait(finding), ""))
                if twin is not None and not _replayed_since(finding, twin):
                    key, known = twin["anomaly_id"], twin
            found.add(key)
            if known is None:
                # explained only when first found: a tick re-finds every open
                # workflow's anomalies, and rendering them again cost ~8 ms a tick
                row = anomaly_row(finding, now=now, key=key)
                self._rows[key] = row
                if row["kind"] in STUCK_KINDS:
                    self._stuck_steps.add(_step(row))
                if waiting:
                    self._waits[_wait(row)] = key
                if self.is_retired(row["workflow_id"]):
                    # spans of a retired workflow back in the store: what they show
                    # was told before its retirement (or, unseen then, is as old)
                    row["alerted_at"] = row["webhook_at"] = now
                else:
                    new.append(row)
                self._changed(key)
            else:
                changed = known["resolved_at"] is not None
                known["resolved_at"] = None
                if finding.get("workflow_id") is None and finding["root_cause"] == "spans_dropped":
                    # an exporter's count of dropped spans only grows: its finding (one
                    # per instance) says the count now, not the first one seen
                    changed |= _explained_again(known, finding, now=now)
                elif known["kind"] == finding["kind"] in LATE_FACTS:
                    # told before all its facts were stored (a dead letter's last
                    # attempt arrives after the advisory): say what the store shows now
                    changed |= self._facts_changed(known, finding) and _explained_again(
                        known, finding, now=now, facts_changed=True
                    )
                if changed:
                    self._changed(key)
        for row in self._rows.values():
            if row["anomaly_id"] in found or row["resolved_at"] is not None:
                continue
            wf = row["workflow_id"]
            in_scope = (services and wf is None) or (
                wf is not None and (workflows is None or wf in workflows)
            )
            if in_scope:
                row["resolved_at"] = now
                self._changed(row["anomaly_id"])
        return new

    def _facts_changed(self, known: dict[str, Any], finding: dict[str, Any]) -> bool:
        """Whether ``finding`` shows ``known``'s ``LATE_FACTS`` otherwise than it was told."""
        fields = LATE_FACTS[finding["kind"]]
        key = known["anomaly_id"]
        told = self._told_facts.get(key)
        if told is None:
            evidence = orjson.loads(known.get("evidence") or "{}")
            told = tuple(evidence.get(k) for k in fields)
        now = tuple(finding.get(k) for k in fields)
        self._told_facts[key] = now
        return now != told

    def is_retired(self, workflow_id: str | None) -> bool:
        return workflow_id is not None and _workflow_key(workflow_id) in self._retired

    def retirable(self, *, before: dt.datetime) -> set[str]:
        """Workflows every anomaly of which was found before ``before``: those that may
        have no span left in a store whose oldest hour begins then."""
        later = {r["workflow_id"] for r in self._rows.values() if r["detected_at"] >= before}
        return {
            r["workflow_id"]
            for r in self._rows.values()
            if r["workflow_id"] is not None and r["workflow_id"] not in later
        }

    def retire(self, workflows: set[str], *, at: dt.datetime) -> None:
        """Retire the anomalies of ``workflows``, whose spans retention dropped: gone
        from the ledger now, from its files at the next full rewrite."""
        if not workflows:
            return
        for key in [k for k, r in self._rows.items() if r["workflow_id"] in workflows]:
            del self._rows[key]
            self._told_facts.pop(key, None)
            self._since_full.discard(key)
            self._retiring.add(key)
        for workflow_id in workflows:
            self._retired.add(_workflow_key(workflow_id), at=at)
        self._retired.settle()
        self._stuck_steps = {s for s in self._stuck_steps if s[0] not in workflows}
        self._waits = {w: k for w, k in self._waits.items() if w[0] not in workflows}
        self._retired_written = False
        self.changed = True

    def retire_service_findings(self, *, before: dt.datetime) -> None:
        """Retire the service-level anomalies (no workflow: a service gone silent, an
        exporter that dropped spans) resolved before ``before``: episodes over before the
        oldest hour the store holds, whose heartbeats retention dropped. No workflow
        hash is kept for them: a service's later episode is a new fault. One still open
        stays, however old: the service is still silent or still dropping spans."""
        over = [
            key
            for key, row in self._rows.items()
            if row["workflow_id"] is None
            and row["resolved_at"] is not None
            and row["resolved_at"] < before
        ]
        for key in over:
            del self._rows[key]
            self._since_full.discard(key)
            self._retiring.add(key)
        if over:
            self.changed = True

    def forget_retired_before(self, at: dt.datetime) -> None:
        """Let go of the workflows retired in an hour before ``at``'s, whose spans can no
        longer come back (``retirement.retired_keys_expire_before``): the retired file
        holds about one retention period of them, not every run ever retired."""
        held = len(self._retired)
        self._retired.forget_before(at)
        if len(self._retired) != held:
            self._retired_written = False
            self.changed = True

    def mark_alerted(self, anomaly_ids: Iterable[str], *, at: dt.datetime, webhook: bool) -> None:
        """Record that NATS took these alerts; ``webhook``: that they were queued for
        one too, which owes it them until ``mark_webhook_settled``. Without one they
        are owed nothing: a later watcher given ``--webhook`` does not post them."""
        for key in anomaly_ids:
            row = self._rows[key]
            row["alerted_at"] = at
            if not webhook:
                row["webhook_at"] = at
            self._changed(key)

    def mark_webhook_settled(self, anomaly_ids: Iterable[str], *, at: dt.datetime) -> None:
        """Record that the webhook took these alerts, or refused them for good."""
        for key in anomaly_ids:
            row = self._rows.get(key)  # retired meanwhile: nothing left to record
            if row is not None and row.get("webhook_at") is None:
                row["webhook_at"] = at
                self._changed(key)

    def webhook_owed(self) -> list[dict[str, Any]]:
        """The open anomalies alerted on NATS that the webhook has not taken yet (a
        watcher stopped while it was down), oldest first: a restarted watcher posts
        them to the webhook, and only there."""
        owed = [
            r
            for r in self._rows.values()
            if r["alerted_at"] is not None
            and r.get("webhook_at") is None
            and r["resolved_at"] is None
        ]
        return sorted(owed, key=lambda r: (r["alerted_at"], r["detected_at"], r["anomaly_id"]))

    def _changed(self, key: str) -> None:
        row = self._rows[key]
        row["revision"] = (row.get("revision") or 0) + 1
        self._since_full.add(key)
        self.changed = True

    def rewrite_all(self) -> None:
        """Have the next ``write`` write every anomaly to the full file (its files were
        lost)."""
        self._full_written_at = float("-inf")
        self._retired_written = False
        self.changed = True

    def unalerted(self) -> list[dict[str, Any]]:
        return [r for r in self._rows.values() if r["alerted_at"] is None]

    def write(self, layout: StoreLayout) -> None:
        """Write the rows changed since the full file to the recent one, or, every
        ``rewrite_s``, every anomaly (oldest first) to the full one."""
        if self._full is None:  # the first write converts every row
            table = pa.Table.from_pylist(list(self._rows.values()), schema=ANOMALIES)
        else:  # later ones only the rows changed since the full file
            changed = pa.Table.from_pylist(
                [self._rows[k] for k in sorted(self._since_full)], ANOMALIES
            )
            if time.monotonic() - self._full_written_at < self.rewrite_s:
                write_findings(layout, RECENT, changed)
                # rows retired since stay in the full file until it is rewritten
                self.changed = bool(self._retiring) or not self._retired_written
                return
            ids = pa.array(sorted(self._since_full | self._retiring), pa.string())
            kept = self._full.filter(pc.invert(pc.is_in(self._full["anomaly_id"], ids)))
            table = pa.concat_tables([kept, changed])
        table = table.sort_by([("detected_at", "ascending"), ("anomaly_id", "ascending")])
        if not self._retired_written:
            # before the full file: cut short in between, the rows it still holds are
            # retired again, and none is ever alerted again
            keys, hours = self._retired.arrays()
            write_findings(
                layout,
                RETIRED,
                pa.table({"workflow_key": keys, "retired_hour": hours}, schema=RETIRED_WORKFLOWS),
            )
            self._retired_written = True
        # the full file first: until the recent one is emptied, its rows' higher
        # revisions still win, and they are the same rows
        write_findings(layout, FULL, table)
        write_findings(layout, RECENT, table.slice(0, 0))
        self._full, self._full_written_at = table, time.monotonic()
        self._since_full.clear()
        self._retiring.clear()
        self.changed = False


def _workflow_key(workflow_id: str) -> int:
    """A workflow id's 64-bit hash, the same in every process (``hash`` is not)."""
    return int.from_bytes(hashlib.blake2b(workflow_id.encode(), digest_size=8).digest(), "little")


def _explained_again(
    known: dict[str, Any], finding: dict[str, Any], *, now: dt.datetime, facts_changed: bool = False
) -> bool:
    """Give ``known`` the explanation and evidence ``finding`` has now; whether they
    read otherwise (``facts_changed``: the evidence does, whatever the explanation)."""
    fresh = anomaly_row(finding, now=now, key=known["anomaly_id"])
    if fresh["detail"] == known["detail"] and not facts_changed:
        return False
    known["detail"], known["evidence"] = fresh["detail"], fresh["evidence"]
    return True


def _wait(anomaly: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """Which message an anomaly of a stuck kind waits on, and for whose delivery."""
    return anomaly.get("workflow_id"), anomaly.get("message_id"), anomaly.get("consumer")


def _step(anomaly: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """Which workflow's step, and whose delivery of it, an anomaly is about."""
    return anomaly.get("workflow_id"), anomaly.get("step"), anomaly.get("consumer")


def _replayed_since(finding: dict[str, Any], twin: dict[str, Any]) -> bool:
    """Whether ``finding``'s message was published again after what ``twin`` told of it
    (an operator replaying a dead letter): the replay begins a new wait, and one lost
    on the way is a new fault to tell, not the dead letter again."""
    replayed = finding.get("replayed_at")
    if replayed is None:
        return False
    told = orjson.loads(twin.get("evidence") or "{}").get("replayed_at")
    return told is None or dt.datetime.fromisoformat(told) < replayed
