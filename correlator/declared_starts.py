"""Refusing a ``starts_with`` misspelt in choreography.yaml.

A run's type is told by its first event: a declared workflow whose ``starts_with``
no stored span carries names no run, and its runs silently keep their learned type
name (the first event's subject) with the terms the file meant for them. Learning
only warned of it, in a log the user may never read. So a ``starts_with`` that no
stored span has carried, while one a typo away from it has, is refused when the file
is loaded over a store, if the store holds spans of the workflow's other subjects
(its steps, ends, what follows them): its pipeline has run, and what it published
first is the near name. A choreography declared before its pipeline ever ran (none
of its subjects stored yet) still loads: learning warns of what it has not seen.
"""

from __future__ import annotations

import logging

import duckdb

from correlator.declared_choreography import Choreography, DeclaredWorkflow
from correlator.spelling import closest
from store import StoreLayout

log = logging.getLogger(__name__)


def misspelt_start(choreography: Choreography, *, layout: StoreLayout) -> tuple[str, str] | None:
    """The first declared ``starts_with`` to refuse, as (the key's dotted path, the
    problem), or None."""
    subjects = _stored_subjects(layout)
    for wf in choreography.workflows:
        if not subjects or wf.starts_with in subjects:
            continue
        near = closest(wf.starts_with, subjects)
        if near is None or not _own_subjects(wf) & subjects:
            continue  # a new first event, or a pipeline that has not run yet
        return (
            f"workflows.{wf.name}.starts_with",
            f"workflow {wf.name!r} starts_with {wf.starts_with!r}, which no stored span "
            "carries, though the stored spans show its other subjects: its runs would "
            f"keep their learned type name, not {wf.name!r} (did you mean {near!r}?)",
        )
    return None


def _own_subjects(wf: DeclaredWorkflow) -> set[str]:
    """What the workflow declares besides its first event."""
    named = {step.subject for step in wf.steps} | set(wf.terminal)
    named |= {n for step in wf.steps for n in step.next or ()}
    return named - {wf.starts_with}


def _stored_subjects(layout: StoreLayout) -> set[str]:
    """Every subject a stored span carries (one column of each segment, read once
    when a command loads the file); none when the store cannot say (checking is then
    left to the warnings of learning)."""
    files = sorted(layout.segments("spans")) if layout.exists() else []
    if not files:
        return set()
    con = duckdb.connect(":memory:")
    try:
        rows = con.execute(
            "SELECT DISTINCT subject FROM read_parquet($files, union_by_name = true, "
            "hive_partitioning = false) WHERE subject IS NOT NULL",
            {"files": files},
        ).fetchall()
    except duckdb.Error as e:  # a damaged segment: the correlator names it
        log.warning("could not check the choreography's starts_with against the store: %s", e)
        return set()
    finally:
        con.close()
    return {subject for (subject,) in rows}
