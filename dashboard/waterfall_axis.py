"""The waterfall's time axis: the wall clock, or milliseconds from the run's start.

A run of a few milliseconds on a ``%H:%M:%S`` axis got one label ("14:02:07") for
its whole width, and a run of a second or two the same label several times over.
A run shorter than ``SHORT_RUN`` is therefore drawn against the milliseconds since
its first bar began, which Vega ticks at round offsets (0, 1, 2 ms; 0, 500,
1,000 ms), and the axis title says when that start was, in UTC. Longer runs keep
the UTC clock. Tooltips show UTC times either way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import altair as alt
import pandas as pd

SHORT_RUN: Final = pd.Timedelta(seconds=10)
OFFSET_SUFFIX: Final = "_ms"  # the column of a time's offset, in milliseconds
CLOCK_FORMAT: Final = "%H:%M:%S"
OFFSET_FORMAT: Final = ",~f"  # 0, 0.5, 1,500: no trailing zeros, thousands grouped


@dataclass(frozen=True)
class WaterfallAxis:
    """Where a time lands on the waterfall: ``origin`` is the run's start when it
    is drawn in milliseconds from it, None when drawn on the UTC clock."""

    origin: pd.Timestamp | None

    @classmethod
    def for_rows(cls, rows: pd.DataFrame, *, stall_at: dt.datetime | None) -> WaterfallAxis:
        """The axis that reads best for ``rows`` (and the stall marker, when drawn)."""
        if rows.empty:
            return cls(origin=None)
        first = rows["start"].min()
        last = rows["end"].max()
        if stall_at is not None:
            last = max(last, pd.Timestamp(stall_at))
        return cls(origin=first if last - first < SHORT_RUN else None)

    def placed(self, frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
        """``frame`` with each time column's offset from the origin, when drawn so."""
        if self.origin is None:
            return frame
        origin = self.origin
        return frame.assign(
            **{
                f"{c}{OFFSET_SUFFIX}": (frame[c] - origin) / pd.Timedelta(milliseconds=1)
                for c in columns
            }
        )

    def field(self, column: str) -> str:
        """The encoding shorthand that places time column ``column``."""
        if self.origin is None:
            return f"{column}:T"
        return f"{column}{OFFSET_SUFFIX}:Q"

    def x(self, column: str) -> alt.X:
        """The x encoding of ``column``, with the axis: titled, ticked and labelled."""
        if self.origin is None:
            return alt.X(
                self.field(column),
                title="UTC",
                scale=alt.Scale(type="utc"),
                axis=alt.Axis(format=CLOCK_FORMAT, labelOverlap=True),
            )
        began = self.origin.tz_convert("UTC") if self.origin.tzinfo else self.origin
        return alt.X(
            self.field(column),
            title=f"ms since the run's start, {began:%H:%M:%S}.{began.microsecond // 1000:03d} UTC",
            scale=alt.Scale(zero=True, nice=True),
            axis=alt.Axis(format=OFFSET_FORMAT, labelOverlap=True),
        )
