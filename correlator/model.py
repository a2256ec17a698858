"""The choreography model: learned from history, overridden by what is declared.

Learned: the directly-follows graph of subjects per workflow type, the expected
consumers of each subject, terminal subjects, and step-latency quantiles that set
each step's deadline (p99 × margin, never below the floor). Declared
(``choreography.yaml``): workflows, steps, consumers, terminal events and SLAs,
which replace what was learned for what they name.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from correlator.declared_choreography import (
    Choreography,
    ConsumerTerms,
    DeclaredStep,
    DeclaredWorkflow,
    merged_steps,
)
from correlator.findings import (
    MODEL_FOLLOWS,
    MODEL_PRODUCERS,
    MODEL_STEPS,
    MODEL_TYPES,
    read_findings,
)
from correlator.spelling import did_you_mean
from correlator.sql_text import run_folder
from correlator.thresholds import Thresholds
from store import StoreLayout

log = logging.getLogger(__name__)

# the findings files a model is written to (ChoreographyModel.tables)
MODEL_FILES = ("model_steps", "model_follows", "model_types", "model_producers")


@dataclass
class ChoreographyModel:
    """The model as rows of the tables detection joins on."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    follows: list[dict[str, Any]] = field(default_factory=list)
    types: list[dict[str, Any]] = field(default_factory=list)
    producers: list[dict[str, Any]] = field(default_factory=list)

    def tables(self) -> dict[str, pa.Table]:
        return {
            "model_steps": pa.Table.from_pylist(self.steps, schema=MODEL_STEPS),
            "model_follows": pa.Table.from_pylist(self.follows, schema=MODEL_FOLLOWS),
            "model_types": pa.Table.from_pylist(self.types, schema=MODEL_TYPES),
            "model_producers": pa.Table.from_pylist(self.producers, schema=MODEL_PRODUCERS),
        }


def learn_model(
    con: duckdb.DuckDBPyConnection,
    *,
    thresholds: Thresholds,
    declared: Choreography | None = None,
    remembered_since: Mapping[tuple[str, str], dt.datetime] | None = None,
) -> ChoreographyModel:
    """Learn from the spans ``correlated_spans`` points at; apply ``declared`` on top.
    ``remembered_since``: the ``expected_since`` of each (subject, consumer) a past
    model learned. It stays: retention drops a store's oldest hours, and a group
    deployed late would then look there from the start, and owe what came before it."""
    run_folder(con, "learn_sql", thresholds.sql_parameters())
    steps = con.sql("SELECT * FROM learned_steps ORDER BY subject, consumer").to_arrow_table()
    follows = con.sql("SELECT * FROM learned_follows ORDER BY ALL").to_arrow_table()
    types = con.sql("SELECT * FROM learned_types ORDER BY workflow_type").to_arrow_table()
    producers = con.sql("SELECT subject, producer_service FROM learned_producers").to_arrow_table()
    model = ChoreographyModel(producers=producers.to_pylist())
    for row in steps.to_pylist():
        past = (remembered_since or {}).get((row["subject"], row["consumer"]))
        if past is not None:
            row["expected_since"] = min(past, row["expected_since"] or past)
        row["deadline_s"] = _learned_deadline(row["p99_ms"], thresholds)
        row["sla_s"] = None
        row["source"] = "learned"
        model.steps.append(row)
    model.follows = [dict(row, source="learned") for row in follows.to_pylist()]
    model.types = [dict(row, declared=False) for row in types.to_pylist()]
    if declared is not None:
        for problem in unseen_declarations(model, declared):
            log.warning("choreography: %s", problem)
        _apply_declared(model, declared, thresholds)
    return model


def unseen_declarations(model: ChoreographyModel, declared: Choreography) -> list[str]:
    """What ``declared`` names that the stored spans never showed (a misspelled
    subject or group judges nothing), as lines to warn with; none while the store
    holds no workflow to compare with."""
    if not model.types:
        return []
    subjects = {s["subject"] for s in model.steps} | {
        f[end] for f in model.follows for end in ("from_subject", "to_subject") if f[end]
    }
    consumers = {(s["subject"], s["consumer"]) for s in model.steps}
    groups = {consumer for _, consumer in consumers}
    problems = []
    for wf in declared.workflows:
        named = [("starts_with", wf.starts_with)] + [("terminal", t) for t in wf.terminal]
        named += [("step", step.subject) for step in wf.steps]
        named += [("next", n) for step in wf.steps for n in step.next or ()]
        for role, subject in named:
            if subject not in subjects:
                problems.append(
                    f"workflow {wf.name!r}: {role} {subject!r} is no subject the stored "
                    f"spans show; check its spelling{did_you_mean(subject, subjects)} (or "
                    "nothing has published it yet)"
                )
        for step in wf.steps:
            if step.subject not in subjects:
                continue
            for consumer in step.consumers:
                if (step.subject, consumer) not in consumers:
                    problems.append(
                        f"workflow {wf.name!r}: no consumer group {consumer!r} handled "
                        f"{step.subject!r} in the stored spans; check its spelling"
                        f"{did_you_mean(consumer, groups)} (or it is not deployed yet)"
                    )
    return list(dict.fromkeys(problems))


def _learned_deadline(p99_ms: float | None, thresholds: Thresholds) -> float:
    learned = (p99_ms or 0.0) / 1000.0 * thresholds.deadline_margin
    return max(thresholds.min_deadline_s, learned)


def _apply_declared(
    model: ChoreographyModel, declared: Choreography, thresholds: Thresholds
) -> None:
    learned_steps = {(s["subject"], s["consumer"]): s for s in model.steps}
    seen_types = {t["start_subject"]: t["workflows"] for t in model.types}
    # a subject may be a step of several workflows: its rows are one per consumer
    declared_steps = merged_steps(declared)
    replaced = {step.subject for step in declared_steps if step.consumers}
    steps = [s for s in model.steps if s["subject"] not in replaced]
    for step in declared_steps:
        if step.consumers:
            for consumer in step.consumers:
                base = learned_steps.get((step.subject, consumer), {})
                steps.append(
                    {
                        "subject": step.subject,
                        "consumer": consumer,
                        "consumer_service": base.get("consumer_service", consumer),
                        "samples": base.get("samples", 0),
                        "p50_ms": base.get("p50_ms"),
                        "p95_ms": base.get("p95_ms"),
                        "p99_ms": base.get("p99_ms"),
                        "deadline_s": step.deadline_for(consumer)
                        or base.get("deadline_s", thresholds.min_deadline_s),
                        "sla_s": step.sla_for(consumer),
                        "source": "declared",
                        # a group deployed later owes nothing from before it, declared
                        # or not (model --write declares every learned consumer)
                        "expected_since": base.get("expected_since"),
                    }
                )
        elif step.deadline_s is not None or step.sla_s is not None:
            for s in steps:
                if s["subject"] == step.subject:
                    s["deadline_s"] = step.deadline_s or s["deadline_s"]
                    s["sla_s"] = step.sla_s
                    s["source"] = "declared"
    model.steps = steps

    starts = {wf.starts_with for wf in declared.workflows}
    learned_follows = model.follows
    model.follows = [f for f in learned_follows if f["workflow_type"] not in starts]
    model.types = [t for t in model.types if t["start_subject"] not in starts]
    for wf in declared.workflows:
        terminal = set(wf.terminal)
        # without declared terminal events, the ends stay learned, for the declared
        # transitions too: declaring what follows a step says nothing of where runs end
        learned_ends = {
            f["to_subject"]
            for f in learned_follows
            if f["workflow_type"] == wf.starts_with and f["terminal"]
        }
        ends = terminal or learned_ends
        # what follows a subject is declared when it is a step with `next`; the rest
        # is still learned (a terminal event says a run may end there, not that
        # nothing may follow it)
        declared_from = {s.subject for s in wf.steps if s.next is not None}
        model.follows += [
            dict(
                f,
                workflow_type=wf.name,
                terminal=f["to_subject"] in ends,
            )
            for f in learned_follows
            if f["workflow_type"] == wf.starts_with
            and f["from_subject"] is not None
            and f["from_subject"] not in declared_from
        ]
        model.types.append(
            {
                "workflow_type": wf.name,
                "start_subject": wf.starts_with,
                "workflows": seen_types.get(wf.starts_with, 0),
                "declared": True,
            }
        )
        transitions = [(None, wf.starts_with)] + [
            (step.subject, nxt) for step in wf.steps for nxt in _declared_after(step)
        ]
        for from_subject, to_subject in transitions:
            model.follows.append(
                {
                    "workflow_type": wf.name,
                    "from_subject": from_subject,
                    "to_subject": to_subject,
                    "support": 0,
                    "terminal": to_subject in ends,
                    "source": "declared",
                }
            )


def _declared_after(step: DeclaredStep) -> tuple[str | None, ...]:
    """The transitions a step declares, by their to_subject: none without `next` (left
    to learning); for `next: []`, one with none, which says that what may follow the
    step is declared, and nothing is."""
    if step.next is None:
        return ()
    return step.next or (None,)


def read_written_model(layout: StoreLayout) -> ChoreographyModel | None:
    """The model a pass last wrote to ``<data>/findings/`` (the one it judged with), or
    None: a file missing or unreadable, or written before model_types was (steps
    without types)."""
    tables = {name: read_findings(layout, name) for name in MODEL_FILES}
    if any(table is None for table in tables.values()):
        return None
    model = ChoreographyModel(
        steps=tables["model_steps"].to_pylist(),
        follows=tables["model_follows"].to_pylist(),
        types=tables["model_types"].to_pylist(),
        producers=tables["model_producers"].to_pylist(),
    )
    if (model.steps or model.follows) and not model.types:
        return None
    return model


def install_model(con: duckdb.DuckDBPyConnection, model: ChoreographyModel) -> None:
    """Make the model's tables joinable by the detection SQL in ``con``."""
    for name, table in model.tables().items():
        con.register(f"{name}_arrow", table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
        con.unregister(f"{name}_arrow")


def model_as_choreography(model: ChoreographyModel, *, thresholds: Thresholds) -> Choreography:
    """The model written as a declared choreography, to edit and declare."""
    consumers: dict[str, list[dict[str, Any]]] = {}
    for s in model.steps:
        consumers.setdefault(s["subject"], []).append(s)
    workflows = []
    for t in sorted(model.types, key=lambda t: t["workflow_type"]):
        follows = [f for f in model.follows if f["workflow_type"] == t["workflow_type"]]
        # a transition learned too rarely to be allowed (a deviation, flagged as one) is
        # not written as allowed, in a declared type's learned remainder either
        needed = max(2, thresholds.min_transition_share * t["workflows"])
        follows = [
            f
            for f in follows
            if f["source"] == "declared" or f["support"] >= min(needed, t["workflows"])
        ]
        subjects = _in_flow_order(t["start_subject"], follows)
        steps = []
        for subject in subjects:
            rows = sorted(consumers.get(subject, []), key=lambda r: r["consumer"])
            after = [f["to_subject"] for f in follows if f["from_subject"] == subject]
            # none learned: left to learning; declared that none may (a row with no
            # to_subject): `next: []`
            nxt = tuple(sorted({s for s in after if s is not None})) if after else None
            steps.append(_as_step(subject, rows, next_subjects=nxt))
        terminal = sorted({f["to_subject"] for f in follows if f["terminal"]})
        workflows.append(
            DeclaredWorkflow(
                name=t["workflow_type"],
                starts_with=t["start_subject"],
                terminal=tuple(terminal),
                steps=tuple(steps),
            )
        )
    return Choreography(workflows=tuple(workflows))


def _as_step(
    subject: str, rows: list[dict[str, Any]], *, next_subjects: tuple[str, ...] | None
) -> DeclaredStep:
    """A step with its consumers' rows: the step's deadline and SLA are the most
    consumers share (the longest among equals), and a consumer whose own differ keeps
    them as its terms, so that the file, declared, judges as the model did."""
    deadline_s = _most_shared(r["deadline_s"] for r in rows)
    sla_s = _most_shared(r["sla_s"] for r in rows)
    terms = []
    for r in rows:
        own = ConsumerTerms(
            consumer=r["consumer"],
            deadline_s=r["deadline_s"] if r["deadline_s"] != deadline_s else None,
            sla_s=r["sla_s"] if r["sla_s"] != sla_s else None,
        )
        if own.deadline_s is not None or own.sla_s is not None:
            terms.append(own)
    return DeclaredStep(
        subject=subject,
        consumers=tuple(r["consumer"] for r in rows),
        next=next_subjects,
        deadline_s=deadline_s,
        sla_s=sla_s,
        terms=tuple(terms),
    )


def _most_shared(values: Iterable[float | None]) -> float | None:
    """The value most consumers share, the longest among equals; none when one of them
    has none (a consumer's own terms can only add one)."""
    counts = Counter(values)
    if None in counts or not counts:
        return None
    return max(counts, key=lambda v: (counts[v], v))


def _in_flow_order(start: str, follows: list[dict[str, Any]]) -> list[str]:
    """Subjects breadth-first from the start event, so the file reads as the flow."""
    # a step declared `next: []` has a row with no to_subject
    closed = sorted({f["from_subject"] for f in follows if f["to_subject"] is None})
    follows = [f for f in follows if f["to_subject"] is not None]
    order, queue = [start], [start]
    while queue:
        subject = queue.pop(0)
        for nxt in sorted({f["to_subject"] for f in follows if f["from_subject"] == subject}):
            if nxt not in order:
                order.append(nxt)
                queue.append(nxt)
    rest = sorted({f["to_subject"] for f in follows} - set(order))
    return order + rest + [s for s in closed if s not in order and s not in rest]
