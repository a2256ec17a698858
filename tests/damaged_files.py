"""Store files damaged as a disk crash leaves them, for the tests of what readers,
the correlator and the collector's maintenance do with them."""

from __future__ import annotations

from pathlib import Path


def cut_short(path: Path) -> bytes:
    """Truncate ``path`` to half its size, as a crash of the disk can; its bytes now."""
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)
    return path.read_bytes()
