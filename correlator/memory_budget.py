"""How much memory the correlator's DuckDB may take, and what it says when that is
not enough.

A first pass over a week of spans holds far more than a tick: on 10M spans it
peaked at 5.4 GB. Left to DuckDB's default (80% of the machine's memory, for each
database) the passes and the model learned beside them could together take the
memory the collector and the agents on the same host need. The correlator's
budget (``--memory-limit``; by default half this machine's memory, or of its
container's limit if lower: ``machine_memory``) is split: two
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

CGROUP_FS = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def machine_memory(*, cgroup_fs: Path = CGROUP_FS, proc_cgroup: Path = PROC_CGROUP) -> int:
    """This machine's memory in bytes, or the memory limit of the container (cgroup)
    this process runs in if lower: a container sees its host's memory, and is killed
    at its own limit long before DuckDB would spill."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = cgroup_memory_limit(cgroup_fs=cgroup_fs, proc_cgroup=proc_cgroup)
    return physical if limit is None else min(physical, limit)


def cgroup_memory_limit(*, cgroup_fs: Path, proc_cgroup: Path) -> int | None:
    """The memory limit of this process's cgroup (v2 ``memory.max``, or v1
    ``memory.limit_in_bytes``), None if it has none or it cannot be read. In a
    container the cgroup's own folder is often the mount's root."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    candidates: list[Path] = []
    for line in lines:  # hierarchy-id:controllers:path
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        own = path.strip().lstrip("/")
        if hierarchy == "0" and not controllers:
            candidates += [cgroup_fs / own / "memory.max", cgroup_fs / "memory.max"]
        elif "memory" in controllers.split(","):
            v1 = cgroup_fs / "memory"
            candidates += [v1 / own / "memory.limit_in_bytes", v1 / "memory.limit_in_bytes"]
    for candidate in candidates:
        try:
            text = candidate.read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # v2 writes "max" for none; v1 a number near 2**63
            return int(text)
    return None


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
