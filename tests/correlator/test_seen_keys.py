"""What a watcher remembers of the ids the store held (seen_keys.py): every key it
was given is found again, across merges, until retention drops its hour."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import correlator.seen_keys as seen_keys
from correlator.seen_keys import SeenKeys, hour_of

T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def test_every_key_is_found_again_across_merges_and_only_those(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(seen_keys, "MERGE_AT", 100)  # merge often
    rng = np.random.default_rng(7)
    stored = rng.integers(0, 2**64 - 1, 1_000, dtype=np.uint64)
    seen = SeenKeys()
    seen.load(np.concatenate([stored, stored[:10]]), np.full(1_010, hour_of(T0)))
    expected = {int(k) for k in stored}
    for n in range(3_000):
        key = int(stored[n % 1_000] if n % 3 == 0 else rng.integers(0, 2**64 - 1, dtype=np.uint64))
        assert seen.add(key, at=T0 + dt.timedelta(hours=2)) == (key not in expected)
        expected.add(key)
        seen.settle()

    assert len(seen) == len(expected) and all(k in seen for k in expected)
    assert sum(int(k) in seen for k in rng.integers(0, 2**64 - 1, 1_000, dtype=np.uint64)) == 0


def test_a_key_added_and_undone_is_gone_and_old_hours_are_let_go() -> None:
    seen = SeenKeys()
    seen.load(np.array([1, 2], dtype=np.uint64), np.full(2, hour_of(T0)))
    assert seen.add(3, at=T0 + dt.timedelta(hours=3))
    seen.discard(3)  # the tick that added it was rolled back
    assert 3 not in seen
    seen.add(4, at=T0 + dt.timedelta(hours=3))

    seen.forget_before(T0 + dt.timedelta(hours=1))

    assert (1 in seen, 2 in seen, 4 in seen) == (False, False, True)
