"""Every anomaly ever found, keyed by its stable id: what is new, what resolved,
what was already alerted. Persisted in ``findings/anomalies.parquet``, so a
restarted correlator neither forgets nor re-alerts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from correlator.explain import anomaly_id, anomaly_row
from correlator.findings import ANOMALIES, write_findings
from store.layout import StoreLayout


class AnomalyLedger:
    def __init__(self, rows: Iterable[dict[str, Any]] = ()) -> None:
        self._rows: dict[str, dict[str, Any]] = {r["anomaly_id"]: r for r in rows}
        self.changed = False

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
                self.changed = True
            elif known["resolved_at"] is not None:
                known["resolved_at"] = None
                self.changed = True
        for row in self._rows.values():
            if row["anomaly_id"] in found or row["resolved_at"] is not None:
                continue
            wf = row["workflow_id"]
            in_scope = (services and wf is None) or (
                wf is not None and (workflows is None or wf in workflows)
            )
            if in_scope:
                row["resolved_at"] = now
                self.changed = True
        return new

    def mark_alerted(self, anomaly_ids: Iterable[str], *, at: dt.datetime) -> None:
        for key in anomaly_ids:
            self._rows[key]["alerted_at"] = at
            self.changed = True

    def unalerted(self) -> list[dict[str, Any]]:
        return [r for r in self._rows.values() if r["alerted_at"] is None]

    def write(self, layout: StoreLayout) -> None:
        rows = sorted(self._rows.values(), key=lambda r: (r["detected_at"], r["anomaly_id"]))
        write_findings(layout, "anomalies", pa.Table.from_pylist(rows, schema=ANOMALIES))
        self.changed = False
