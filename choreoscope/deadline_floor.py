"""The floor under learned step deadlines that ``choreoscope model`` learns with.

``--min-deadline`` (or ``CHOREOSCOPE_MIN_DEADLINE``) when given; else the floor the
store's correlator last judged with (``last_pass.json`` records it), so that the
file ``model --write`` writes, once declared, judges as the correlator did: the demo
judges with a 5s floor, and a file learned with the 30s default raised every
deadline it declared, without a word; else the setting's default.
"""

from __future__ import annotations

from dataclasses import dataclass

from choreoscope.settings import DEFAULT, SETTINGS, format_duration
from correlator.last_pass import read_last_pass
from store import StoreLayout


@dataclass(frozen=True)
class DeadlineFloor:
    seconds: float
    source: str  # where it came from, as a user reads it

    def describe(self) -> str:
        """``step deadlines no shorter than 5s (<where from>)``, for the user to see."""
        return f"step deadlines no shorter than {format_duration(self.seconds)} ({self.source})"


def model_deadline_floor(*, layout: StoreLayout, given: float, given_by: str) -> DeadlineFloor:
    """The floor to learn with: ``given`` unless ``given_by`` is ``DEFAULT`` (then the
    correlator's last floor, if the store records one)."""
    setting = SETTINGS["min_deadline"]
    if given_by != DEFAULT:
        return DeadlineFloor(seconds=given, source=f"from {given_by}")
    last = read_last_pass(layout)
    if last is not None and last.min_deadline_s is not None:
        return DeadlineFloor(
            seconds=last.min_deadline_s,
            source=f"the floor the correlator last judged this store with; "
            f"pass {setting.flag} to choose another",
        )
    return DeadlineFloor(
        seconds=given,
        source=f"the default: no correlator pass over this store recorded its floor; "
        f"pass {setting.flag} to choose another",
    )
