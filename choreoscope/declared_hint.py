"""Which --choreography to pass to keep the declared model a store was judged with.

`choreoscope model` and `correlate` warn when the last pass declared a choreography
and this one declares none. "Pass --choreography FILE" left the user to remember
which file that was (a demo user never wrote one): the last pass records it
(``last_pass.json``), so the warning names it.
"""

from __future__ import annotations

from correlator.last_pass import read_last_pass
from store import StoreLayout

__all__ = ["choreography_to_pass"]


def choreography_to_pass(*, layout: StoreLayout) -> str:
    """What to pass as ``--choreography``: the file the last pass judged with, else
    FILE (a store judged before passes recorded it)."""
    last = read_last_pass(layout)
    if last is not None and last.choreography:
        return f"{last.choreography} (the one the last pass judged with)"
    return "FILE"
