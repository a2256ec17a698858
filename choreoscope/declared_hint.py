"""Which --choreography to pass to keep the declared model a store was judged with.

`choreoscope model` and `correlate` warn when the last pass declared a choreography
and this one declares none. "Pass --choreography FILE" left a user of the demo, who
never wrote one, with no file to pass: the demo declares the samples' own, and its
store holds the demo's run directory, so there the file is named.
"""

from __future__ import annotations

from choreoscope.demo_run import DEMO_RUN_DIR, choreography_file
from store import StoreLayout

__all__ = ["choreography_to_pass"]


def choreography_to_pass(*, layout: StoreLayout) -> str:
    """What to pass as ``--choreography``: the samples' file on a demo's store, else
    FILE (the user's own, which the store does not record)."""
    if (layout.root / DEMO_RUN_DIR).is_dir():
        return f"{choreography_file()} (the one `choreoscope demo` declares)"
    return "FILE"
