"""How much memory the correlator's DuckDB may take, and what it says when that is
not enough.

A first pass over a week of spans holds far more than a tick: on 10M spans it
peaked at 5.4 GB. Left to DuckDB's default (80% of the machine's memory, for each
database) the passes and the model learned beside them could together take the
memory the collector and the agents on the same host need. The correlator's
budget (``--memory-limit``; by default half this machine's memory) is split: two
thirds for the passes, a third for learning the model. Past it DuckDB spills to
``<data>/.spill`` (store/spill.py): a pass over more than fits is slower, and
completes (10M spans under a 2 GB limit: 22 s instead of 16 s, peak 2.6 GB).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from instrumentation.errors import ChoreoscopeError


def machine_memory() -> int:
    """This machine's memory, in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True)
class MemoryBudget:
    total: int
    """Bytes the correlator's DuckDB databases may hold in memory, together."""

    @classmethod
    def default(cls) -> MemoryBudget:
        return cls(total=machine_memory() // 2)

    @property
    def passes(self) -> int:
        """The limit of the connection that runs the passes."""
        return self.total * 2 // 3

    @property
    def learning(self) -> int:
        """The limit of the connection that learns the model beside the ticks."""
        return self.total // 3


class MemoryBudgetError(ChoreoscopeError):
    """A pass needed more memory than its limit, even spilling to disk."""

    transient = True  # memory others held, or disk, may be free by the next pass

    def __init__(self, *, limit: int, spill: Path, reason: str) -> None:
        self.limit = limit
        self.spill = spill
        super().__init__(
            f"the correlator needed more memory than its limit of {format_bytes(limit)} "
            f"even after spilling to {spill} ({reason}): give it more with --memory-limit "
            "(or CHOREOSCOPE_MEMORY_LIMIT; passes take two thirds of it), or free disk "
            "space there"
        )


class SpillError(MemoryBudgetError):
    """A pass past its memory limit could not write what it spills (a full disk: the
    collector writes to the same one; a spill directory gone)."""

    def __init__(self, *, limit: int, spill: Path, reason: str) -> None:
        self.limit = limit
        self.spill = spill
        ChoreoscopeError.__init__(
            self,
            f"the correlator went past its memory limit of {format_bytes(limit)} and could "
            f"not spill to {spill} ({reason}): free disk space there, or give it more "
            "memory with --memory-limit (or CHOREOSCOPE_MEMORY_LIMIT; passes take two "
            "thirds of it)",
        )


@contextlib.contextmanager
def within(*, limit: int, spill: Path) -> Iterator[None]:
    """Turn DuckDB running out of ``limit``, or failing to write what it spills past
    it, into a ``MemoryBudgetError``."""
    try:
        yield
    except duckdb.OutOfMemoryException as e:
        raise MemoryBudgetError(limit=limit, spill=spill, reason=_first_line(e)) from e
    except duckdb.IOException as e:
        # DuckDB's own cap on spilling (max_temp_directory_size) raises OutOfMemory,
        # but it is 90% of the disk free when it looked: a disk the collector fills
        # meanwhile fails the write instead
        if str(spill) not in str(e):
            raise
        raise SpillError(limit=limit, spill=spill, reason=_first_line(e)) from e


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
