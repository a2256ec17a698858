"""``--since``: how far back a command looks, as a duration or ``all``."""

from __future__ import annotations

import argparse
import datetime as dt

from choreoscope.settings import Duration

ALL = "all"


def parse_window(text: str) -> float | None:
    """``--since``'s value: seconds, or None for ``all`` (an argparse ``type``)."""
    if text.strip().lower() == ALL:
        return None
    try:
        return Duration(minimum=1.0)(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{e}, or `{ALL}`") from None


def window_text(seconds: float) -> str:
    """A window as one writes it: 24h, 7d, 90m."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0 and not (unit == "d" and seconds < 2 * size):
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def window_begins(seconds: float | None) -> dt.datetime | None:
    """When a window of ``seconds`` back from now begins; None for all time."""
    return None if seconds is None else dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
