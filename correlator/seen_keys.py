"""The trace and workflow ids a store has held, as 64-bit hashes, for as long as the
store keeps their spans.

A watcher lets a quiet workflow go from memory, and a span that continues it later
(a redelivered duplicate, a run resuming) must bring the rest back from the store:
``SpanMemory.admit`` asks whether the store held its trace or workflow before. The
keys are held in a sorted array (8 bytes each, with the hour each was first seen in
4 more), and those added since the last merge in a dict; ``settle`` merges them, and
``forget_before`` lets go of the hours the store's retention dropped. A Python set of
every key ever seen cost ~70 bytes a key and was never pruned: at 100 runs a second,
over a gigabyte a day.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

MERGE_AT = 50_000
"""Keys added since the last merge that make ``settle`` merge them."""


def hour_of(at: dt.datetime) -> int:
    """Hours since the epoch: the bucket a key seen at ``at`` is kept in."""
    return int(at.timestamp() // 3600)


class SeenKeys:
    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.uint64)  # sorted, unique
        self._hours = np.empty(0, dtype=np.int32)  # the hour each was first seen
        self._recent: dict[int, int] = {}  # key → hour, added since the last merge

    def load(self, keys: np.ndarray, hours: np.ndarray) -> None:
        """Hold exactly ``keys`` (first seen in ``hours``), as a cold pass found them."""
        order = np.argsort(keys, kind="stable")
        keys, hours = keys[order].astype(np.uint64), hours[order].astype(np.int32)
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        self._keys, self._hours, self._recent = keys[first], hours[first], {}

    def __contains__(self, key: int) -> bool:
        if key in self._recent:
            return True
        i = int(np.searchsorted(self._keys, np.uint64(key)))
        return i < len(self._keys) and int(self._keys[i]) == key

    def __len__(self) -> int:
        return len(self._keys) + len(self._recent)

    def add(self, key: int, *, at: dt.datetime) -> bool:
        """Hold ``key``; whether it is new (``discard`` takes a new one out again)."""
        if key in self:
            return False
        self._recent[key] = hour_of(at)
        return True

    def discard(self, key: int) -> None:
        """Take out a key ``add`` made new since the last ``settle``."""
        self._recent.pop(key, None)

    def settle(self) -> None:
        """Merge the keys added lately into the sorted array, once they are many."""
        if len(self._recent) < MERGE_AT:
            return
        keys = np.fromiter(self._recent.keys(), dtype=np.uint64, count=len(self._recent))
        hours = np.fromiter(self._recent.values(), dtype=np.int32, count=len(self._recent))
        order = np.argsort(keys)
        keys, hours = keys[order], hours[order]
        at = np.searchsorted(self._keys, keys)
        self._keys = np.insert(self._keys, at, keys)
        self._hours = np.insert(self._hours, at, hours)
        self._recent = {}

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every key held and the hour each was first seen in, sorted by key (``load``
        takes them back)."""
        keys = np.concatenate(
            [self._keys, np.fromiter(self._recent.keys(), dtype=np.uint64, count=len(self._recent))]
        )
        hours = np.concatenate(
            [
                self._hours,
                np.fromiter(self._recent.values(), dtype=np.int32, count=len(self._recent)),
            ]
        )
        order = np.argsort(keys, kind="stable")
        return keys[order], hours[order]

    def forget_before(self, at: dt.datetime) -> None:
        """Let go of the keys first seen in an hour before ``at``'s."""
        oldest = hour_of(at)
        if len(self._hours) and int(self._hours.min()) < oldest:
            kept = self._hours >= oldest
            self._keys, self._hours = self._keys[kept], self._hours[kept]
        self._recent = {k: h for k, h in self._recent.items() if h >= oldest}
