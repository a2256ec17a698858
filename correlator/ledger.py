"""Every anomaly ever found, keyed by its stable id: what is new, what resolved,
what was already alerted. Persisted in ``findings/anomalies.parquet``, so a
restarted correlator neither forgets nor re-alerts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from correlator.explain import anomaly_id, anomaly_row
from correlator.findings import ANOMALIES, write_findings
from store.layout import StoreLayout


class AnomalyLedger:
    def __init__(self, rows: Iterable[dict[str, Any]] = ()) -> None:
        self._rows: dict[str, dict[str, Any]] = {r["anomaly_id"]: r for r in rows}
        self.changed = False
        # the table last written and the rows changed since: a write converts only
        # those (every anomaly ever found, converted at each tick's write, cost more
        # than the rest of the write as the ledger grew)
        self._written: pa.Table | None = None
        self._dirty: set[str] = set()

    @classmethod
    def load(cls, layout: StoreLayout) -> AnomalyLedger:
        path = layout.findings / "anomalies.parquet"
        if not path.exists():
            return cls()
        return cls(pq.read_table(path).to_pylist())

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
            key = anomaly_id(finding)
            found.add(key)
            known = self._rows.get(key)
            if known is None:
                # explained only when first found: a tick re-finds every open
                # workflow's anomalies, and rendering them again cost ~8 ms a tick
                row = anomaly_row(finding, now=now)
                self._rows[key] = row
                new.append(row)
                self._changed(key)
            elif known["resolved_at"] is not None:
                known["resolved_at"] = None
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

    def mark_alerted(self, anomaly_ids: Iterable[str], *, at: dt.datetime) -> None:
        for key in anomaly_ids:
            self._rows[key]["alerted_at"] = at
            self._changed(key)

    def _changed(self, anomaly_id: str) -> None:
        self._dirty.add(anomaly_id)
        self.changed = True

    def unalerted(self) -> list[dict[str, Any]]:
        return [r for r in self._rows.values() if r["alerted_at"] is None]

    def write(self, layout: StoreLayout) -> None:
        """Replace ``findings/anomalies.parquet``: every anomaly, oldest first."""
        if self._written is None:
            table = pa.Table.from_pylist(list(self._rows.values()), schema=ANOMALIES)
        else:
            dirty = pa.array(sorted(self._dirty), pa.string())
            kept = self._written.filter(pc.invert(pc.is_in(self._written["anomaly_id"], dirty)))
            changed = pa.Table.from_pylist([self._rows[k] for k in sorted(self._dirty)], ANOMALIES)
            table = pa.concat_tables([kept, changed])
        table = table.sort_by([("detected_at", "ascending"), ("anomaly_id", "ascending")])
        write_findings(layout, "anomalies", table)
        self._written = table
        self._dirty.clear()
        self.changed = False
