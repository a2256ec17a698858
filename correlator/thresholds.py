"""The knobs of detection, with the defaults DESIGN.md's definitions imply.

Every duration is in seconds. Tests pass short ones; the CLI sets
``min_deadline_s`` from ``--min-deadline``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from instrumentation.errors import ConfigurationError

# the knobs that are a share of something, from 0 to 1
SHARES = ("min_transition_share", "terminal_share")


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    min_deadline_s: float = 30.0
    """The floor under learned step deadlines, and the deadline of a step never seen."""
    deadline_margin: float = 1.5
    """A learned deadline is the step's p99 latency times this (never below the floor)."""
    retry_grace_s: float = 5.0
    """How long after a failed attempt a retry may still come before it is `failed`."""
    orphan_grace_s: float = 10.0
    """How long a consumer span waits for its producer's span before it is an orphan
    (from its start, or from when the store got it if later)."""
    silence_factor: float = 3.0
    """An instance is silent after this many of its heartbeat intervals without one."""
    silent_horizon_s: float = 3600.0
    """Services silent for longer than this are no longer reported as telemetry gaps."""
    slow_factor: float = 4.0
    """A step is slow past this many times its learned p95 latency ..."""
    slow_min_excess_s: float = 1.0
    """... and at least this much longer than it ..."""
    slow_min_samples: int = 20
    """... once it has been seen this many times (else only a declared SLA applies)."""
    min_model_workflows: int = 5
    """A learned workflow type judges deviations once this many runs were seen."""
    min_transition_share: float = 0.01
    """A learned transition is allowed once seen in this share of its type's runs (and twice)."""
    present_from_start_s: float = 600.0
    """A consumer group whose first message came this soon after its subject's first was
    there all along: it owes every message, not only those published since it came."""
    terminal_share: float = 0.05
    """A subject is terminal once this share of its processed messages led to nothing."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value < 0:
                raise ConfigurationError(
                    setting=f.name, value=value, fix="use a value of zero or more"
                )
            if f.name in SHARES and value > 1:
                raise ConfigurationError(
                    setting=f.name, value=value, fix="use a share from 0 to 1 (0.05 is 5%)"
                )

    def sql_parameters(self) -> dict[str, Any]:
        """Named parameters for the learning and detection SQL (``$min_deadline_s`` etc.)."""
        return dataclasses.asdict(self)
