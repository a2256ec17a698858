"""The declared choreography as the correlator holds it: workflows, their steps, and
each consumer's own terms, whether read from ``choreography.yaml``
(``choreography_file``) or written from a learned model (``model``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConsumerTerms:
    """A consumer's own deadline or SLA for one step, over the step's."""

    consumer: str
    deadline_s: float | None = None
    sla_s: float | None = None


@dataclass(frozen=True)
class DeclaredStep:
    subject: str
    consumers: tuple[str, ...] = ()
    # the events allowed to follow it; None: not declared (learned), (): none may
    next: tuple[str, ...] | None = None
    deadline_s: float | None = None
    sla_s: float | None = None
    terms: tuple[ConsumerTerms, ...] = ()  # sorted by consumer

    def deadline_for(self, consumer: str) -> float | None:
        own = next((t.deadline_s for t in self.terms if t.consumer == consumer), None)
        return own if own is not None else self.deadline_s

    def sla_for(self, consumer: str) -> float | None:
        own = next((t.sla_s for t in self.terms if t.consumer == consumer), None)
        return own if own is not None else self.sla_s


@dataclass(frozen=True)
class DeclaredWorkflow:
    name: str
    starts_with: str
    terminal: tuple[str, ...] = ()
    steps: tuple[DeclaredStep, ...] = ()


@dataclass(frozen=True)
class Choreography:
    workflows: tuple[DeclaredWorkflow, ...] = field(default_factory=tuple)
    # the file it was read from (recorded with the passes that judge with it); not
    # part of what it declares, so neither compared nor in the verdicts' fingerprint
    source: str | None = field(default=None, compare=False, repr=False)


def merged_steps(choreography: Choreography) -> list[DeclaredStep]:
    """One step per subject declared, with what each workflow declares of it (which
    ``parse_choreography`` checked do not contradict each other)."""
    merged: dict[str, DeclaredStep] = {}
    for step in (step for wf in choreography.workflows for step in wf.steps):
        was = merged.get(step.subject)
        if was is None:
            merged[step.subject] = step
            continue
        merged[step.subject] = DeclaredStep(
            subject=step.subject,
            consumers=was.consumers or step.consumers,
            terms=was.terms if was.consumers else step.terms,
            next=None,  # what follows it is per workflow: read it from each workflow's steps
            deadline_s=was.deadline_s if was.deadline_s is not None else step.deadline_s,
            sla_s=was.sla_s if was.sla_s is not None else step.sla_s,
        )
    return list(merged.values())
