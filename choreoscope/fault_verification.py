"""Compare the faults a run injected (ground truth) with what the correlator found.

A fault is *detected* when an anomaly of its expected kind names its workflow
(service-level kinds such as ``telemetry_gap`` may instead name its service). A
finding on a workflow that got no fault is a *healthy workflow flagged*. A
faulty workflow may also show the consequences of its fault (a dropped message
also stalls the workflow): those count as correct findings, not false ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# fault -> anomaly kinds that are right to report on its workflow (the first is the
# expected kind; the others are its consequences)
CONSEQUENCES: dict[str, tuple[str, ...]] = {
    "drop": ("dropped", "stalled"),
    "hang": ("hung", "stalled", "dead_lettered", "duplicate"),
    # each retry of a crash is awaited as long as its nak asked: a failed is a false alarm
    "crash": ("dead_lettered", "stalled"),
    "poison": ("dead_lettered", "failed", "stalled"),
    "duplicate": ("duplicate", "slow", "hung"),
    "consumer_down": ("stalled", "slow", "telemetry_gap"),
    "deviation": ("deviation",),
    "lost_telemetry": ("telemetry_gap", "orphan", "stalled", "dropped", "slow"),
    "slow": ("slow",),
}
SERVICE_LEVEL_KINDS = frozenset({"telemetry_gap"})


@dataclass(frozen=True)
class KindScore:
    kind: str
    injected: int
    detected: int
    findings: int
    correct_findings: int

    @property
    def recall(self) -> float | None:
        return self.detected / self.injected if self.injected else None

    @property
    def precision(self) -> float | None:
        return self.correct_findings / self.findings if self.findings else None


@dataclass
class Verification:
    scores: list[KindScore]
    missed: list[Mapping[str, Any]] = field(default_factory=list)
    healthy_flagged: list[Mapping[str, Any]] = field(default_factory=list)
    workflows_started: int = 0

    @property
    def passed(self) -> bool:
        return not self.missed and not self.healthy_flagged

    def report(self) -> str:
        lines = [
            f"{'kind':<16}{'injected':>9}{'detected':>9}{'recall':>8}{'findings':>10}"
            f"{'precision':>10}"
        ]
        for s in self.scores:
            lines.append(
                f"{s.kind:<16}{s.injected:>9}{s.detected:>9}{_ratio(s.recall):>8}"
                f"{s.findings:>10}{_ratio(s.precision):>10}"
            )
        injected = sum(s.injected for s in self.scores)
        lines.append(
            f"{self.workflows_started} workflows started, {injected} faults injected, "
            f"{len(self.missed)} missed, {len(self.healthy_flagged)} healthy workflows flagged"
        )
        for fault in self.missed:
            lines.append(
                f"  missed: {fault['fault']} at {fault['step']} in workflow "
                f"{fault['workflow_id']} (expected a {fault['kind']} finding)"
            )
        for finding in self.healthy_flagged:
            lines.append(
                f"  healthy workflow flagged: {finding['kind']} on {finding['workflow_id']}: "
                f"{finding.get('detail') or ''}"
            )
        lines.append("PASS" if self.passed else "FAIL")
        return "\n".join(lines)


def verify_findings(
    *,
    truth: Iterable[Mapping[str, Any]],
    findings: Iterable[Mapping[str, Any]],
    started: Iterable[str],
) -> Verification:
    """Score ``findings`` (rows of ``anomalies``) against ``truth`` (ground-truth lines).

    Only workflows in ``started`` (this run's) are judged; findings about older
    runs in the same store are left out.
    """
    started_ids = set(started)
    truth = [t for t in truth if t["workflow_id"] in started_ids]
    allowed: dict[str, set[str]] = {}
    faulty_services: set[str] = set()
    for t in truth:
        allowed.setdefault(str(t["workflow_id"]), set()).update(CONSEQUENCES[str(t["fault"])])
        faulty_services.add(str(t["step"]))
    run_findings = [
        f
        for f in findings
        if f.get("workflow_id") in started_ids
        or (f.get("workflow_id") is None and f.get("kind") in SERVICE_LEVEL_KINDS)
    ]
    found_pairs = {(f.get("workflow_id"), f.get("kind")) for f in run_findings}
    found_services = {(f.get("service"), f.get("kind")) for f in run_findings}

    missed = [
        t
        for t in truth
        if (t["workflow_id"], t["kind"]) not in found_pairs
        and not (t["kind"] in SERVICE_LEVEL_KINDS and (t["step"], t["kind"]) in found_services)
    ]
    healthy_flagged = [
        f
        for f in run_findings
        if f.get("workflow_id") is not None and f["workflow_id"] not in allowed
    ]

    kinds = sorted({str(t["kind"]) for t in truth} | {str(f["kind"]) for f in run_findings})
    scores = []
    for kind in kinds:
        injected = [t for t in truth if t["kind"] == kind]
        of_kind = [f for f in run_findings if f["kind"] == kind]
        correct = [
            f
            for f in of_kind
            if (f.get("workflow_id") is not None and kind in allowed.get(f["workflow_id"], ()))
            or (f.get("workflow_id") is None and f.get("service") in faulty_services)
        ]
        scores.append(
            KindScore(
                kind=kind,
                injected=len(injected),
                detected=len([t for t in injected if t not in missed]),
                findings=len(of_kind),
                correct_findings=len(correct),
            )
        )
    return Verification(
        scores=scores,
        missed=missed,
        healthy_flagged=healthy_flagged,
        workflows_started=len(started_ids),
    )


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
