"""An anomaly table's ``state`` column: open, or resolved and when, beside its kind.

A resolved anomaly (a consumer that came back, a hung handler that finished) read
"stalled … consumer_down" in a completed run's table; that it was over was said only
by ``resolved_at``, the table's last column, cut off past the page's width.
"""

from __future__ import annotations

import pandas as pd

RESOLVED_FORMAT = "resolved %Y-%m-%d %H:%M:%S UTC"
OPEN = "still open"  # not "open": the link column beside it reads "open ↗"


def with_state(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``state`` after ``kind`` (first when it has no ``kind``):
    "still open", or "resolved <UTC time>"."""
    resolved = pd.to_datetime(frame["resolved_at"], utc=True)
    state = resolved.dt.strftime(RESOLVED_FORMAT).where(resolved.notna(), OPEN)
    columns = [c for c in frame.columns if c != "state"]
    at = columns.index("kind") + 1 if "kind" in columns else 0
    return frame.assign(state=state)[[*columns[:at], "state", *columns[at:]]]
