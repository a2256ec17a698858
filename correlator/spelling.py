"""Telling a misspelt name from a new one: what the stored spans show that is a
typo away from a name a user wrote."""

from __future__ import annotations

from collections.abc import Iterable


def closest(name: str, known: Iterable[str]) -> str | None:
    """The name of ``known`` a typo away from ``name`` (two edits at most), if any. A
    closeness ratio took a new step, `recruit.candidate.rejected`, for `...routed`
    misspelt."""
    close = sorted((edits(name, k), k) for k in known if abs(len(k) - len(name)) <= 2)
    return close[0][1] if close and close[0][0] <= 2 else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``: did you mean 'scorer'?`` when a name of ``known`` is a typo away from
    ``name``: a message then says what to write."""
    near = closest(name, known)
    return f": did you mean {near!r}?" if near is not None else ""


def edits(a: str, b: str) -> int:
    """The Levenshtein distance of ``a`` and ``b``, a swap of two letters counting 2."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]
