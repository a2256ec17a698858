"""The declared choreography: ``choreography.yaml``, read and written.

    version: 1
    workflows:
      recruitment:                              # the workflow type's name
        starts_with: recruit.application.received
        terminal: [recruit.decision.made]       # events that end a run
        steps:
          recruit.application.received:
            consumers: [parser]                 # consumer groups expected to handle it
            next: [recruit.cv.parsed]           # events allowed to follow it
            deadline: 30s                       # no progress for longer: stalled
            sla: 5s                             # completed later than this: slow
          recruit.cv.parsed:
            consumers:
              - scorer                          # the step's deadline and sla
              - archiver: {deadline: 10m}       # its own, for this consumer only
            deadline: 2m
          recruit.decision.made:
            next: []                            # nothing may follow it

A step without ``next`` leaves what follows it to learning; ``next: []`` allows nothing.
Durations are ``500ms``, ``30s``, ``5m``, ``2h``, ``1d`` or plain seconds. What is declared
overrides what the correlator learned; the rest is still learned. A subject's
consumers, deadline and sla hold wherever it is published: a step several workflows
share is declared alike in each (or in one of them only); its `next` is per workflow.
A key written twice in one mapping is an error. Loaded over a store (``correlate``,
``model``), a ``starts_with`` that no stored span carries, while one a typo away from
it does and the workflow's other subjects are stored, is an error too (its runs would
keep their learned type name): see ``declared_starts``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from correlator.choreography_yaml import DuplicateKey, UniqueKeyLoader, line_of, yaml_problem
from correlator.declared_choreography import (
    Choreography,
    ConsumerTerms,
    DeclaredStep,
    DeclaredWorkflow,
)
from correlator.declared_starts import misspelt_start
from instrumentation.errors import ChoreoscopeError
from store import StoreLayout

VERSION = 1
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class ChoreographyFileError(ChoreoscopeError, ValueError):
    """choreography.yaml cannot be read or does not have the expected shape.

    ``where`` is the dotted path of the key at fault (``workflows.w.steps.a.sla``),
    from which ``parse_choreography`` finds its ``line``."""

    def __init__(
        self, *, path: Path | str, problem: str, where: str | None = None, line: int | None = None
    ) -> None:
        self.path = path
        self.problem = problem
        self.where = where
        self.line = line
        at = f", line {line}" if line else ""
        super().__init__(
            f"{path}{at}: {problem}. Fix the file (`choreoscope model --write FILE` writes a "
            "valid one from what was learned), or run without --choreography"
        )


def format_duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if seconds >= 1:
        return f"{seconds:g}s"
    return f"{round(seconds * 1000)}ms"


def _duration(value: Any, *, path: Path | str, where: str) -> float | None:
    if value is None:
        return None
    match = _DURATION.match(str(value))
    if not match:
        raise ChoreographyFileError(
            path=path,
            problem=f"{where} is {value!r}, not a duration like 500ms, 30s, 5m, 2h or 1d",
            where=where,
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:  # a deadline of 0 was ignored, an SLA of 0 made every step slow
        raise ChoreographyFileError(
            path=path,
            problem=f"{where} is {value!r}: write a duration over zero, or leave it out",
            where=where,
        )
    return seconds


def _names(value: Any, *, path: Path | str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ChoreographyFileError(path=path, problem=f"{where} must be a list of names", where=where)


def _consumers(
    value: Any, *, path: Path | str, where: str
) -> tuple[tuple[str, ...], tuple[ConsumerTerms, ...]]:
    """A step's consumers: names, each alone or with its own terms
    (``archiver: {deadline: 10m}``)."""
    if not isinstance(value, list):
        return _names(value, path=path, where=where), ()
    names: list[str] = []
    terms: list[ConsumerTerms] = []
    for entry in value:
        if isinstance(entry, str):
            names.append(entry)
            continue
        if not (isinstance(entry, dict) and len(entry) == 1):
            raise ChoreographyFileError(
                path=path,
                problem=f"{where} must list consumer names, each alone or with its own "
                "terms (- archiver: {deadline: 10m})",
                where=where,
            )
        ((name, body),) = entry.items()
        own = f"{where}.{name}"
        body = _mapping(body, path=path, where=own)
        extra = set(body) - {"deadline", "sla"}
        if extra:
            raise ChoreographyFileError(
                path=path,
                problem=f"{own}: unknown keys {sorted(extra)} (a consumer's own terms are "
                "deadline and sla)",
                where=f"{own}.{sorted(extra)[0]}",
            )
        names.append(str(name))
        deadline_s = _duration(body.get("deadline"), path=path, where=f"{own}.deadline")
        sla_s = _duration(body.get("sla"), path=path, where=f"{own}.sla")
        if deadline_s is not None or sla_s is not None:
            terms.append(ConsumerTerms(consumer=str(name), deadline_s=deadline_s, sla_s=sla_s))
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ChoreographyFileError(path=path, problem=f"{where} lists {twice} twice", where=where)
    return tuple(names), tuple(sorted(terms, key=lambda t: t.consumer))


def _mapping(value: Any, *, path: Path | str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ChoreographyFileError(path=path, problem=f"{where} must be a mapping", where=where)
    return value


def parse_choreography(text: str, *, path: Path | str = "choreography.yaml") -> Choreography:
    """Parse and validate a choreography document."""
    try:
        doc = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader
    except DuplicateKey as e:
        raise ChoreographyFileError(
            path=path,
            problem=f"{e.key!r} is written twice in one mapping (lines {e.first_line} and "
            f"{e.line}): the second would silently replace the first; merge them, or "
            "rename one",
            line=e.line,
        ) from e
    except yaml.YAMLError as e:
        raise ChoreographyFileError(path=path, problem=f"not valid YAML{yaml_problem(e)}") from e
    try:
        return _choreography(doc, path=path)
    except ChoreographyFileError as e:
        if e.line is not None or e.where is None:
            raise
        # the line of the key at fault: "workflows.w.steps.a.sla is '2 sec'" left the
        # user to find it in a file of many steps
        raise ChoreographyFileError(
            path=path, problem=e.problem, where=e.where, line=line_of(text, e.where)
        ) from e


def _choreography(doc: Any, *, path: Path | str) -> Choreography:
    doc = _mapping(doc, path=path, where="the document")
    if doc.get("version", VERSION) != VERSION:
        raise ChoreographyFileError(
            path=path, problem=f"version {doc.get('version')!r} is not {VERSION}", where="version"
        )
    unknown = set(doc) - {"version", "workflows"}
    if unknown:
        raise ChoreographyFileError(
            path=path, problem=f"unknown keys {sorted(unknown)}", where=str(sorted(unknown)[0])
        )
    declared = _mapping(doc.get("workflows"), path=path, where="workflows")
    if not declared:
        raise ChoreographyFileError(path=path, problem="it declares no workflows")
    workflows = []
    for name, body in declared.items():
        body = _mapping(body, path=path, where=f"workflows.{name}")
        # a misspelt key would silently declare nothing: every step out of model
        extra = set(body) - {"starts_with", "terminal", "steps"}
        if extra:
            raise ChoreographyFileError(
                path=path,
                problem=f"workflows.{name}: unknown keys {sorted(extra)} "
                "(a workflow has starts_with, terminal and steps)",
                where=f"workflows.{name}.{sorted(extra)[0]}",
            )
        if not isinstance(body.get("starts_with"), str):
            raise ChoreographyFileError(
                path=path,
                problem=f"workflows.{name}.starts_with must name its first event",
                where=f"workflows.{name}.starts_with",
            )
        steps = []
        step_map = _mapping(body.get("steps"), path=path, where=f"workflows.{name}.steps")
        for subject, step in step_map.items():
            where = f"workflows.{name}.steps.{subject}"
            step = _mapping(step, path=path, where=where)
            extra = set(step) - {"consumers", "next", "deadline", "sla"}
            if extra:
                raise ChoreographyFileError(
                    path=path,
                    problem=f"{where}: unknown keys {sorted(extra)} (a step has consumers, "
                    "next, deadline and sla)",
                    where=f"{where}.{sorted(extra)[0]}",
                )
            consumers, terms = _consumers(
                step.get("consumers"), path=path, where=f"{where}.consumers"
            )
            steps.append(
                DeclaredStep(
                    subject=str(subject),
                    consumers=consumers,
                    terms=terms,
                    next=None
                    if step.get("next") is None
                    else _names(step["next"], path=path, where=f"{where}.next"),
                    deadline_s=_duration(
                        step.get("deadline"), path=path, where=f"{where}.deadline"
                    ),
                    sla_s=_duration(step.get("sla"), path=path, where=f"{where}.sla"),
                )
            )
        workflows.append(
            DeclaredWorkflow(
                name=str(name),
                starts_with=body["starts_with"],
                terminal=_names(
                    body.get("terminal"), path=path, where=f"workflows.{name}.terminal"
                ),
                steps=tuple(steps),
            )
        )
    starts: dict[str, str] = {}
    for wf in workflows:
        other = starts.setdefault(wf.starts_with, wf.name)
        if other != wf.name:
            raise ChoreographyFileError(
                path=path,
                problem=f"workflows {other!r} and {wf.name!r} both start with "
                f"{wf.starts_with!r}: a run's type is told by its first event, so one of "
                "them would name its runs at random; merge them, or change a starts_with",
                where=f"workflows.{wf.name}.starts_with",
            )
    _check_shared_steps(workflows, path=path)
    return Choreography(workflows=tuple(workflows))


def _check_shared_steps(workflows: list[DeclaredWorkflow], *, path: Path | str) -> None:
    """A subject's consumers, deadline and SLA hold for every message of that subject,
    whichever workflow it is a step of: two workflows that declare it differently
    cannot both hold, and one of them would be silently ignored."""
    first: dict[tuple[str, str], tuple[str, Any]] = {}
    for wf in workflows:
        for step in wf.steps:
            for key, value in (
                (
                    "consumers",
                    (tuple(sorted(step.consumers)), step.terms) if step.consumers else None,
                ),
                ("deadline", step.deadline_s),
                ("sla", step.sla_s),
            ):
                if value is None:
                    continue
                other = first.setdefault((step.subject, key), (wf.name, value))
                if other[1] != value:
                    shown = [
                        _consumer_list(*v) if key == "consumers" else format_duration(v)
                        for v in (other[1], value)
                    ]
                    raise ChoreographyFileError(
                        path=path,
                        problem=f"workflows.{other[0]}.steps.{step.subject}.{key} is "
                        f"{shown[0]}, but workflows.{wf.name}.steps.{step.subject}.{key} is "
                        f"{shown[1]}: a subject's consumers, deadline and sla hold in every "
                        "workflow it is a step of; write the same in both, or in one only",
                        where=f"workflows.{wf.name}.steps.{step.subject}.{key}",
                    )


def _consumer_list(names: tuple[str, ...], terms: tuple[ConsumerTerms, ...]) -> list[Any]:
    """A step's consumers as choreography.yaml lists them."""
    own = {t.consumer: t for t in terms}
    listed: list[Any] = []
    for name in names:
        t = own.get(name)
        body = {
            key: format_duration(seconds)
            for key, seconds in (("deadline", t and t.deadline_s), ("sla", t and t.sla_s))
            if seconds is not None
        }
        listed.append({name: body} if body else name)
    return listed


def load_choreography(path: Path | str, *, store: Path | str | None = None) -> Choreography:
    """Read and check ``path``; with ``store`` (its data directory), also against the
    spans stored there: a misspelt ``starts_with`` is refused (``declared_starts``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ChoreographyFileError(path=path, problem=f"cannot be read ({e.strerror})") from e
    except UnicodeDecodeError as e:  # saved as UTF-16, or not text at all
        raise ChoreographyFileError(
            path=path, problem=f"not UTF-8 text (byte {e.start}); save it as UTF-8"
        ) from e
    choreography = dataclasses.replace(
        parse_choreography(text, path=path), source=str(Path(path).resolve())
    )
    refused = None if store is None else misspelt_start(choreography, layout=StoreLayout.at(store))
    if refused is not None:
        where, problem = refused
        raise ChoreographyFileError(
            path=path, problem=problem, where=where, line=line_of(text, where)
        )
    return choreography


def dump_choreography(choreography: Choreography, *, header: str = "") -> str:
    """The YAML text of ``choreography``, which ``parse_choreography`` reads back."""
    workflows: dict[str, Any] = {}
    for wf in choreography.workflows:
        steps: dict[str, Any] = {}
        for step in wf.steps:
            body: dict[str, Any] = {}
            if step.consumers:
                body["consumers"] = _consumer_list(step.consumers, step.terms)
            if step.next is not None:
                body["next"] = list(step.next)
            if step.deadline_s is not None:
                body["deadline"] = format_duration(step.deadline_s)
            if step.sla_s is not None:
                body["sla"] = format_duration(step.sla_s)
            steps[step.subject] = body
        workflows[wf.name] = {
            "starts_with": wf.starts_with,
            "terminal": list(wf.terminal),
            "steps": steps,
        }
    body = yaml.safe_dump(
        {"version": VERSION, "workflows": workflows}, sort_keys=False, allow_unicode=True
    )
    return header + body
