"""Compare the faults a run injected (ground truth) with what the correlator found.

A fault is *detected* when an anomaly of its expected kind names its workflow
(service-level kinds such as ``telemetry_gap`` may instead name its service). A
finding on a workflow that got no fault is a *healthy workflow flagged*. A
faulty workflow may also show the consequences of its fault (a dropped message
also stalls the workflow): those are no false findings, but no evidence of how
well their own kind is detected either, so they are listed under the fault that
caused them and left out of the per-kind precision.

A finding counts once for each fault it covers: one ``telemetry_gap`` about a
service covers every fault injected on that service, so the table's findings of a
kind never fall below the faults they detected ("detected 2, findings 1" read as if
a fault had been found by nothing), and the report says where a finding counted
more than once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# fault -> the other anomaly kinds it rightly causes on its workflow, and why (its
# expected kind is the ground truth's). A `hung` raised by a duplicate's slow first
# attempt says nothing of how well hung handlers are found: the report lists these
# beside the fault, apart from the precision of their kind.
CONSEQUENCES: dict[str, dict[str, str]] = {
    "drop": {"stalled": "the workflow waits on the lost message"},
    "hang": {
        "stalled": "the workflow waits on the hung step",
        "dead_lettered": "the hung message redelivered until given up",
        "duplicate": "the hung message redelivered",
    },
    # each retry of a crash is awaited as long as its nak asked: a failed is a false alarm
    "crash": {"stalled": "the workflow ends at the dead letter"},
    "poison": {
        "failed": "an attempt on the unreadable input",
        "stalled": "the workflow ends at the dead letter",
    },
    "duplicate": {"slow": "the slow first attempt", "hung": "the slow first attempt"},
    "consumer_down": {
        "slow": "messages handled once the service was back",
        "telemetry_gap": "the stopped service's silence",
    },
    "deviation": {},
    "lost_telemetry": {
        "orphan": "a consumer span whose producer span was lost",
        "stalled": "the spans after the loss are missing",
        "dropped": "a message whose consumer spans were lost",
        "slow": "the step waited on its starved exporter",
    },
    "slow": {},
}
SERVICE_LEVEL_KINDS = frozenset({"telemetry_gap"})


@dataclass(frozen=True)
class KindScore:
    kind: str
    injected: int
    detected: int
    findings: int  # each finding once per fault it covers (a false one once)
    correct_findings: int  # of those, the ones covering a fault of this kind
    distinct_findings: int = 0  # the anomaly rows behind ``findings``

    def counted_note(self) -> str | None:
        """What the findings column counts, where a finding covered several faults."""
        if self.findings == self.distinct_findings:
            return None
        rows = self.distinct_findings
        return (
            f"{self.kind}: {rows} finding{'' if rows == 1 else 's'} counted as "
            f"{self.findings}, once for each fault covered (a finding about a whole "
            f"service covers every fault injected on it)"
        )

    @property
    def recall(self) -> float | None:
        return self.detected / self.injected if self.injected else None

    @property
    def precision(self) -> float | None:
        return self.correct_findings / self.findings if self.findings else None


@dataclass(frozen=True)
class FaultOutcome:
    """One injected fault kind: how many were found, and the findings of other kinds
    they caused (kind -> count), which no kind's precision counts."""

    fault: str
    injected: int
    detected: int
    consequences: Mapping[str, int]

    def line(self) -> str:
        also = ", ".join(
            f"{n} {kind} ({CONSEQUENCES[self.fault][kind]})"
            for kind, n in sorted(self.consequences.items())
        )
        return f"{self.fault}: {self.detected} of {self.injected} found" + (
            f"; also {also}" if also else ""
        )


@dataclass
class Verification:
    scores: list[KindScore]
    missed: list[Mapping[str, Any]] = field(default_factory=list)
    healthy_flagged: list[Mapping[str, Any]] = field(default_factory=list)
    workflows_started: int = 0
    faults: list[FaultOutcome] = field(default_factory=list)

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
        lines += [f"  {note}" for s in self.scores if (note := s.counted_note())]
        if self.faults:
            lines.append(
                "per fault, with the findings of other kinds it caused (not counted above):"
            )
            lines += [f"  {fault.line()}" for fault in self.faults]
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
    since: datetime | None = None,
) -> Verification:
    """Score ``findings`` (rows of ``anomalies``) against ``truth`` (ground-truth lines).

    Only workflows in ``started`` (this run's) are judged; findings about older
    runs in the same store are left out, and so are service-level findings
    detected before ``since`` (when this run began).
    """
    started_ids = set(started)
    truth = [t for t in truth if t["workflow_id"] in started_ids]
    faulty_workflows = {t["workflow_id"] for t in truth}
    run_findings = [
        f
        for f in findings
        if f.get("workflow_id") in started_ids
        or (
            f.get("workflow_id") is None
            and f.get("kind") in SERVICE_LEVEL_KINDS
            and (since is None or f.get("detected_at") is None or f["detected_at"] >= since)
        )
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
        if f.get("workflow_id") is not None and f["workflow_id"] not in faulty_workflows
    ]

    # each finding stands for a fault of its own kind (correct), is a consequence of
    # another fault there, or is false (on a healthy workflow, or unexplained by its
    # fault); consequences are counted under their fault, not in their kind's row.
    # A correct finding is kept with the number of faults of its kind it covers
    own: list[tuple[Mapping[str, Any], int]] = []
    caused: dict[str, Counter[str]] = {str(t["fault"]): Counter() for t in truth}
    by_workflow: dict[Any, list[Mapping[str, Any]]] = {}
    by_service: dict[Any, list[Mapping[str, Any]]] = {}
    for t in truth:
        by_workflow.setdefault(t["workflow_id"], []).append(t)
        by_service.setdefault(t["step"], []).append(t)
    for f in run_findings:
        if f.get("workflow_id") is not None:
            faults = by_workflow.get(f["workflow_id"], [])
        else:
            faults = by_service.get(f.get("service"), [])
        covers = sum(1 for t in faults if t["kind"] == f["kind"])
        if covers:
            own.append((f, covers))
            continue
        cause = next((t for t in faults if f["kind"] in CONSEQUENCES[str(t["fault"])]), None)
        if cause is not None:
            caused[str(cause["fault"])][str(f["kind"])] += 1
        else:
            own.append((f, 0))

    kinds = sorted({str(t["kind"]) for t in truth} | {str(f["kind"]) for f, _ in own})
    scores = []
    for kind in kinds:
        injected = [t for t in truth if t["kind"] == kind]
        of_kind = [covers for f, covers in own if f["kind"] == kind]
        scores.append(
            KindScore(
                kind=kind,
                injected=len(injected),
                detected=len([t for t in injected if t not in missed]),
                findings=sum(max(covers, 1) for covers in of_kind),
                correct_findings=sum(of_kind),
                distinct_findings=len(of_kind),
            )
        )
    faults = [
        FaultOutcome(
            fault=name,
            injected=len([t for t in truth if t["fault"] == name]),
            detected=len([t for t in truth if t["fault"] == name and t not in missed]),
            consequences=dict(caused[name]),
        )
        for name in sorted(caused)
    ]
    return Verification(
        scores=scores,
        missed=missed,
        healthy_flagged=healthy_flagged,
        workflows_started=len(started_ids),
        faults=faults,
    )


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
