"""Where each findings table's rows are on disk: immutable generations.

Each findings table is a folder, ``<data>/findings/<name>/``, of Parquet files, one
per write (a generation), named ``<999999999999 - generation>-<random>.parquet``: the
newest sorts first. A write never replaces a file in place: DuckDB may open one path
several times within a query (each place a query or its views name the file), and a
file replaced in between was read with the old one's layout (measured: ~6 % of the
queries that named a findings view twice failed while a watcher ran). The views read
the newest generation only (``correlator/sql``), so a reader sees one generation's
rows, never two added up. DuckDB also opens the first file a glob lists when it
binds a query (for the schema): the newest, never the next to be deleted.

A superseded generation is deleted once ``GRACE_S`` has passed since the next one
became visible (its mtime, stamped once it landed), so a reader whose glob listed
it can still open it: as compaction keeps its inputs (``collector/compaction.py``),
but without a manifest, since the next generation's own file records when the
older was superseded. A crash at any step leaves every generation that landed, the
newest whole (temp name, fsync, rename); at worst old ones wait for the next write.

Stores from before the folders kept one file per table,
``<data>/findings/<name>.parquet``, replaced in place. ``migrate_fixed_file`` links
such a file into its table's folder as its first generation, and again as the next
while the previous release's correlator still replaces it (only its migrated
generations in the folder); it is deleted with the last, after the grace.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from store.durable_files import fsync_path, remove_abandoned_temp_files, replacing
from store.layout import StoreLayout

# how long a superseded generation stays for the readers that listed it: longer than
# any reader's query takes to open the files it listed (compaction's grace too)
GRACE_S: Final = 60.0
_DIGITS: Final = 12
_LAST: Final = 10**_DIGITS - 1  # the name of generation 0, which sorts last
_GENERATION = re.compile(rf"^(\d{{{_DIGITS}}})-[0-9a-z]+\.parquet$")
# a fixed-name file migrated from an older store keeps this suffix: it goes with it
MIGRATED: Final = "migrated"


def table_folder(layout: StoreLayout, name: str) -> Path:
    return layout.findings / name


def fixed_file(layout: StoreLayout, name: str) -> Path:
    """Where stores from before the generation folders kept table ``name``."""
    return layout.findings / f"{name}.parquet"


def generations(layout: StoreLayout, name: str) -> list[Path]:
    """Table ``name``'s generation files, oldest first (none: an empty list)."""
    try:
        entries = os.listdir(table_folder(layout, name))
    except (FileNotFoundError, NotADirectoryError):
        return []
    folder = table_folder(layout, name)
    return [folder / e for e in sorted(entries, reverse=True) if _GENERATION.match(e)]


def current_file(layout: StoreLayout, name: str) -> Path | None:
    """Table ``name``'s newest generation, the one the views read; None if it has none."""
    found = generations(layout, name)
    return found[-1] if found else None


@contextlib.contextmanager
def new_generation(layout: StoreLayout, name: str, *, seed: bool = False) -> Iterator[Path]:
    """Yield a temp path to write table ``name``'s next generation to; once written it
    lands under a new name (temp, fsync, rename). A ``seed`` (the empty table a reader
    writes so that the views bind) is generation 0: any the correlator writes
    supersedes it. Superseded generations are deleted by ``prune_superseded``, which
    the correlator runs now and then (``FindingsPruner``), not at each write."""
    folder = table_folder(layout, name)
    folder.mkdir(parents=True, exist_ok=True)
    existing = generations(layout, name)
    number = 0 if seed else _number(existing[-1]) + 1 if existing else 1
    final = folder / f"{_LAST - number:0{_DIGITS}d}-{secrets.token_hex(4)}.parquet"
    with replacing(final) as tmp:
        yield tmp
    # its mtime says when it became visible, so when the one before it was superseded
    os.utime(final)


def written_empty(layout: StoreLayout, name: str) -> bool:
    """Whether table ``name``'s newest generation is one the correlator wrote (not a
    seed) and holds no row."""
    found = generations(layout, name)
    if not found or _number(found[-1]) == 0:
        return False
    try:
        return pq.read_metadata(found[-1]).num_rows == 0
    except (OSError, pa.ArrowException):
        return False


def prune_superseded(
    layout: StoreLayout, name: str, *, grace_s: float = GRACE_S, now: float | None = None
) -> list[Path]:
    """Delete table ``name``'s generations superseded more than ``grace_s`` ago (when
    the next one became visible); the newest always stays. Returns those deleted."""
    now = time.time() if now is None else now
    found = generations(layout, name)
    deleted = []
    for older, newer in itertools.pairwise(found):
        try:
            superseded_at = newer.stat().st_mtime
        except FileNotFoundError:  # pruned meanwhile by another write
            continue
        if now - superseded_at < grace_s:
            break  # the later ones were superseded later still
        with contextlib.suppress(FileNotFoundError):
            older.unlink()
            deleted.append(older)
    if deleted:
        fsync_path(table_folder(layout, name), directory=True)
    legacy = fixed_file(layout, name)
    if legacy.exists() and not any(p.stem.endswith(MIGRATED) for p in generations(layout, name)):
        # the store's old fixed-name file, migrated; read by views from before the
        # folders, which the catalog no longer holds once its generation is gone
        with contextlib.suppress(FileNotFoundError):
            legacy.unlink()
            deleted.append(legacy)
    for path in remove_abandoned_temp_files(table_folder(layout, name), now=now):
        deleted.append(path)
    return deleted


def migrate_fixed_file(
    layout: StoreLayout, name: str, *, convert: Callable[[Path, Path], None] | None = None
) -> bool:
    """Make a store's fixed-name ``<name>.parquet`` (from before the folders) the newest
    generation of its table, if the table has none, or only migrated ones and the file
    was replaced since (the previous release's correlator ran on after a reader of
    this version migrated it: its writes would be read as never made, what it alerted
    alerted again). Written by ``convert(file, temp path)`` when given (in this
    version's schema), else linked (the old path stays for readers of the old views
    until the grace after it is superseded), else copied. Returns whether it did."""
    legacy = fixed_file(layout, name)
    if not legacy.is_file():
        return False
    found = generations(layout, name)
    if found and not _replaced_since_migrated(legacy, newest=found[-1]):
        return False
    folder = table_folder(layout, name)
    folder.mkdir(parents=True, exist_ok=True)
    number = _number(found[-1]) + 1 if found else 0
    final = folder / f"{_LAST - number:0{_DIGITS}d}-{secrets.token_hex(2)}{MIGRATED}.parquet"
    if convert is not None:
        with replacing(final) as tmp:
            convert(legacy, tmp)
    else:
        try:
            os.link(legacy, final)
        except OSError:  # a file system without hard links
            with replacing(final) as tmp:
                tmp.write_bytes(legacy.read_bytes())
    if found:  # it supersedes one a reader may have listed: the grace starts now
        os.utime(final)
    fsync_path(folder, directory=True)
    return True


def _replaced_since_migrated(legacy: Path, *, newest: Path) -> bool:
    """Whether the fixed-name file was written again after ``newest``, a generation
    migrated from it, was made: only the previous release writes that file."""
    if not newest.stem.endswith(MIGRATED):
        return False  # this version's correlator wrote the table: the file is stale
    try:
        if os.path.samefile(legacy, newest):
            return False
        return legacy.stat().st_mtime > newest.stat().st_mtime
    except FileNotFoundError:  # pruned meanwhile
        return False


def _number(path: Path) -> int:
    match = _GENERATION.match(path.name)
    return _LAST - int(match.group(1)) if match else 0
