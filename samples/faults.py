"""Which faults to inject, chosen deterministically, and the ground truth of those injected.

A fault plan maps each fault to a rate: the probability that a new workflow gets
it. ``--faults drop=0.05,hang=0.02`` or a YAML/JSON file with the same mapping
(``{drop: 0.05, hang: 0.02}``). The choice for the n-th workflow of a run depends
only on the seed, so a run can be repeated.

``demo`` (``choreoscope demo``'s default) opens with one of each fault the pipeline
has a step for, one every ``SHOWCASE_EVERY`` workflows in an order the seed decides,
then draws at its rates: at those (one workflow in 200 per kind) the default seed
injected no ``hang`` for the first 7 minutes, so a five-minute tour never saw one.

Every fault actually injected is appended to the ground-truth JSONL file, with the
anomaly kind the correlator is expected to report for it. ``choreoscope demo
--verify``, the tests and the benchmarks compare that file with ``anomalies``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from instrumentation.errors import ConfigurationError

log = logging.getLogger(__name__)

# fault name -> the anomaly kind (DESIGN.md) the correlator should report for it
EXPECTED_KIND: dict[str, str] = {
    "drop": "dropped",
    "hang": "hung",
    "crash": "dead_lettered",
    "poison": "dead_lettered",
    "duplicate": "duplicate",
    "consumer_down": "stalled",
    "deviation": "deviation",
    "lost_telemetry": "telemetry_gap",
    "slow": "slow",
}
FAULTS = tuple(EXPECTED_KIND)

# `--faults demo`: a few faults a minute at one workflow per second per pipeline
DEMO = "demo"
DEMO_RATES: dict[str, float] = {name: 0.005 for name in FAULTS}
# `--faults demo` opens with a fault every this many workflows (10 s at the demo's
# rate), each kind once: a pipeline's nine kinds within its first 90 workflows
SHOWCASE_EVERY = 10


@dataclass(frozen=True)
class Fault:
    """One fault planned for one workflow: what, and at which step (service)."""

    name: str
    step: str

    @property
    def expected_kind(self) -> str:
        return EXPECTED_KIND[self.name]


def showcases_faults(text: str | None) -> bool:
    """Whether a ``--faults`` value opens with one of each fault (``demo``)."""
    return text is not None and text.strip() == DEMO


def parse_fault_rates(text: str | None) -> dict[str, float]:
    """``drop=0.05,hang=0.02``, ``none``, ``demo``, or the path of a YAML/JSON mapping."""
    if text is None or text.strip() in {"", "none"}:
        return {}
    if text.strip() == DEMO:
        return dict(DEMO_RATES)
    path = Path(text)
    if path.is_file():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigurationError(
                setting="--faults",
                value=text,
                fix=f"the file is not valid YAML ({e}); write a mapping like {{drop: 0.05}}",
            ) from None
        if not isinstance(loaded, Mapping):
            raise ConfigurationError(
                setting="--faults",
                value=text,
                fix="the file must hold a mapping of fault name to rate, like {drop: 0.05}",
            )
        pairs = [(str(k), str(v)) for k, v in loaded.items()]
    else:
        pairs = []
        for item in text.split(","):
            name, sep, rate = item.partition("=")
            if not sep:
                looks_like_a_file = text.endswith((".yaml", ".yml", ".json")) or "/" in text
                raise ConfigurationError(
                    setting="--faults",
                    value=text,
                    fix=f"there is no file {text}"
                    if looks_like_a_file
                    else "write rates like drop=0.05,hang=0.02 (or none, demo, or a YAML file)",
                )
            pairs.append((name.strip(), rate.strip()))
    rates: dict[str, float] = {}
    for name, rate in pairs:
        if name not in EXPECTED_KIND:
            raise ConfigurationError(
                setting="--faults", value=name, fix=f"fault kinds are {', '.join(FAULTS)}"
            )
        try:
            value = float(rate)
        except ValueError:
            value = -1.0
        if not 0.0 <= value <= 1.0:
            raise ConfigurationError(
                setting="--faults",
                value=f"{name}={rate}",
                fix="a rate is the share of workflows that get the fault, between 0 and 1",
            )
        rates[name] = value
    if sum(rates.values()) > 1.0:
        raise ConfigurationError(
            setting="--faults", value=text, fix="the rates must add up to at most 1"
        )
    return rates


class FaultPlan:
    """Draws, for each new workflow in turn, at most one fault and the step it hits;
    ``showcase``: first one of each fault drawn at a rate, one every ``SHOWCASE_EVERY``
    workflows."""

    def __init__(
        self,
        *,
        rates: Mapping[str, float],
        steps: Mapping[str, Sequence[str]],
        seed: int,
        showcase: bool = False,
    ) -> None:
        self.unsupported = sorted(n for n, rate in rates.items() if rate > 0 and not steps.get(n))
        if self.unsupported:
            log.warning(
                "this pipeline has no step for %s: those faults are not injected here",
                ", ".join(self.unsupported),
            )
        self.rates = {n: rate for n, rate in rates.items() if rate > 0 and steps.get(n)}
        self.steps = steps
        self._random = random.Random(seed)
        self._opening = self._showcase() if showcase else []
        self._opening.reverse()  # drawn from the end

    def _showcase(self) -> list[Fault | None]:
        """One of each fault, in the middle of a run of ``SHOWCASE_EVERY`` workflows."""
        kinds = [name for name in FAULTS if name in self.rates]
        self._random.shuffle(kinds)
        # last: a coming or running outage holds every other fault back (its victims
        # must be certain), so a fault drawn after it in the opening was not injected
        kinds.sort(key=lambda name: name == "consumer_down")
        opening: list[Fault | None] = []
        for name in kinds:
            choices = self.steps[name]
            fault = Fault(name=name, step=choices[self._random.randrange(len(choices))])
            half = SHOWCASE_EVERY // 2
            opening += [None] * half + [fault] + [None] * (SHOWCASE_EVERY - half - 1)
        return opening

    def draw(self) -> Fault | None:
        """The fault for the next workflow, or None for a healthy one."""
        if self._opening:
            return self._opening.pop()
        roll = self._random.random()
        step_roll = self._random.random()
        threshold = 0.0
        for name in FAULTS:
            threshold += self.rates.get(name, 0.0)
            if roll < threshold:
                choices = self.steps[name]
                return Fault(name=name, step=choices[int(step_roll * len(choices))])
        return None


class GroundTruth:
    """Appends one JSON line per injected fault; safe for several writers."""

    def __init__(self, path: Path | None, *, pipeline: str) -> None:
        self.path = path
        self.pipeline = pipeline
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, *, workflow_id: str, fault: Fault, subject: str | None = None) -> None:
        if self.path is None:
            return
        record = {
            "workflow_id": workflow_id,
            "kind": fault.expected_kind,
            "fault": fault.name,
            "step": fault.step,
            "subject": subject,
            "pipeline": self.pipeline,
            "at": time.time(),
        }
        with self._lock:
            append_json_line(self.path, record)


def append_json_line(path: Path, record: Mapping[str, object]) -> None:
    """Append one JSON line with a single write() on an O_APPEND descriptor, so the
    lines of several processes writing the same file never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)


def read_ground_truth(path: Path) -> list[dict[str, object]]:
    """The faults recorded in a ground-truth file (none if it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
